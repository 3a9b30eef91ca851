// Where the sandbox and agent runtimes serve Prometheus /metrics: a port of their own beside
// the API (the operator declares it on the Pods it makes, and the chart's PodMonitor scrapes
// it by the name "metrics").
export const METRICS_PORT = 9090;
export const METRICS_PORT_NAME = "metrics";

/** The metrics port of a Pod whose API listens on `apiPort`: 9090, or 9091 if the API has 9090. */
export const metricsPortBeside = (apiPort: number): number =>
  apiPort === METRICS_PORT ? METRICS_PORT + 1 : METRICS_PORT;
