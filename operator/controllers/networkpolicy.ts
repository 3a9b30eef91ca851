// Pieces of the NetworkPolicies the operator makes: who a peer is (pods with these labels
// in that namespace), the DNS egress every restricted pod needs, and the metrics port's ingress.
import { metricsPortBeside } from "../../contracts/metrics.ts";

/** Pods of one namespace, by their labels (the operator's and the gateway's own pods). */
export interface PolicyPeer {
  namespace: string;
  podLabels: Record<string, string>;
}

/** A NetworkPolicy peer matching `peer`'s pods (namespaces carry kubernetes.io/metadata.name). */
export function peerOf(peer: PolicyPeer): Record<string, unknown> {
  return {
    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": peer.namespace } },
    podSelector: { matchLabels: peer.podLabels },
  };
}

/**
 * Ingress to a runtime's metrics port from anywhere (Prometheus may run in any namespace):
 * that port serves /metrics alone, never the API.
 */
export const metricsIngress = (apiPort: number) =>
  ({ ports: [{ port: metricsPortBeside(apiPort), protocol: "TCP" }] }) as const;

/** Egress to DNS (any destination, port 53 over UDP and TCP). */
export const DNS_EGRESS = {
  ports: [
    { port: 53, protocol: "UDP" },
    { port: 53, protocol: "TCP" },
  ],
} as const;
