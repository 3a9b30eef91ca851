// What Kubernetes NetworkPolicies allow, for checking the chart's and the operator's policies
// without an enforcing CNI: a pod's egress (ingress) is open until a policy of type Egress
// (Ingress) selects it; then a connection is allowed only if a rule of one of those policies
// matches its port and peer. A connection between two pods needs both: the client's egress
// and the server's ingress. Only what agentry uses is modelled: matchLabels selectors,
// ipBlock, numeric ports.

export interface Policy {
  metadata: { name: string; namespace?: string };
  spec: {
    podSelector: Selector;
    policyTypes?: string[];
    egress?: Rule[];
    ingress?: Rule[];
  };
}
interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: unknown[];
}
interface Peer {
  podSelector?: Selector;
  namespaceSelector?: Selector;
  ipBlock?: { cidr: string; except?: string[] };
}
interface Rule {
  ports?: { port?: number | string; endPort?: number; protocol?: string }[];
  to?: Peer[];
  from?: Peer[];
}

/** The other end of a connection: an address outside the cluster, or a pod. */
export type Destination =
  | { ip: string }
  | { namespace: string; labels: Record<string, string>; namespaceLabels?: Record<string, string> };

function matches(selector: Selector, labels: Record<string, string>): boolean {
  if (selector.matchExpressions?.length) throw new Error("matchExpressions are not modelled");
  return Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

function ipv4(ip: string): number {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`not an IPv4 address: ${ip}`);
  return parts.reduce((n, p) => n * 256 + p, 0);
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(ip) / size) === Math.floor(ipv4(base!) / size);
}

function peerMatches(peer: Peer, ns: string, dest: Destination): boolean {
  if (peer.ipBlock) {
    if (!("ip" in dest)) return false; // the chart's ipBlocks name addresses outside the cluster
    return inCidr(dest.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((c) => inCidr(dest.ip, c));
  }
  if ("ip" in dest) return false;
  if (peer.namespaceSelector) {
    if (!matches(peer.namespaceSelector, dest.namespaceLabels ?? {})) return false;
  } else if (dest.namespace !== ns) return false;
  return !peer.podSelector || matches(peer.podSelector, dest.labels);
}

type Pod = { namespace: string; labels: Record<string, string>; namespaceLabels?: Record<string, string> };

function allowedBy(
  policies: Policy[],
  pod: Pod,
  direction: "Ingress" | "Egress",
  port: number,
  protocol: "TCP" | "UDP",
  other: Destination,
): boolean {
  const selecting = policies.filter(
    (p) =>
      (p.metadata.namespace ?? pod.namespace) === pod.namespace &&
      matches(p.spec.podSelector, pod.labels) &&
      (p.spec.policyTypes ?? ["Ingress"]).includes(direction),
  );
  if (selecting.length === 0) return true;
  return selecting.some((p) =>
    ((direction === "Egress" ? p.spec.egress : p.spec.ingress) ?? []).some((rule) => {
      const portOk =
        !rule.ports?.length ||
        rule.ports.some(
          (r) =>
            (r.protocol ?? "TCP") === protocol &&
            (r.port === undefined ||
              (r.endPort ? port >= Number(r.port) && port <= r.endPort : Number(r.port) === port)),
        );
      const peers = direction === "Egress" ? rule.to : rule.from;
      const peerOk = !peers?.length || peers.some((peer) => peerMatches(peer, pod.namespace, other));
      return portOk && peerOk;
    }),
  );
}

/** Whether a pod of `namespace` with `labels` may open `protocol`/`port` to `dest`. */
export function egressAllowed(
  policies: Policy[],
  pod: { namespace: string; labels: Record<string, string> },
  port: number,
  protocol: "TCP" | "UDP",
  dest: Destination,
): boolean {
  return allowedBy(policies, pod, "Egress", port, protocol, dest);
}

/** Whether `source` may reach `protocol`/`port` of a pod of `namespace` with `labels`. */
export function ingressAllowed(
  policies: Policy[],
  pod: { namespace: string; labels: Record<string, string> },
  port: number,
  protocol: "TCP" | "UDP",
  source: Destination,
): boolean {
  return allowedBy(policies, pod, "Ingress", port, protocol, source);
}

/** Whether pod `from` may connect to `protocol`/`port` of pod `to`: its egress and `to`'s ingress. */
export function connectionAllowed(
  policies: Policy[],
  from: Pod,
  to: Pod,
  port: number,
  protocol: "TCP" | "UDP" = "TCP",
): boolean {
  return (
    egressAllowed(policies, from, port, protocol, to) && ingressAllowed(policies, to, port, protocol, from)
  );
}
