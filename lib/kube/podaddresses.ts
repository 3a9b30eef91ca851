// Where a pod that agentry created listens (a sandbox runtime, an agent): the pod IP in a
// cluster, or, with a map file, only loopback processes standing in for fake pods. Used by
// the operator and the gateway, the only two programs that dial pods.
import { readFileSync, statSync } from "node:fs";

export interface PodAddressInfo {
  metadata: { name?: string; namespace?: string };
  status?: { podIP?: string };
}

/** What one resolution did: dialled the pod IP, a mapped (loopback) address, or nothing. */
export type Resolution =
  { pod: string; via: "pod-ip" | "map"; address: string } | { pod: string; via: "none" };

/** True for 127.0.0.0/8, ::1 and localhost, with or without a :port. */
export function isLoopbackAddress(hostPort: string): boolean {
  let host = hostPort;
  if (host.startsWith("[")) host = host.slice(1, host.indexOf("]"));
  else if (host.split(":").length === 2) host = host.slice(0, host.indexOf(":"));
  return host === "::1" || host === "localhost" || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * Resolves a pod the operator talks to (a sandbox runtime, an agent's /readyz) to host:port.
 * In a cluster: the pod IP. With `--pod-address-map` (a JSON object {"namespace/pod":
 * "host:port"}, re-read when it changes) the map is the only source: a listed pod goes to
 * its loopback address, an unlisted pod resolves to nothing and is never dialled, and a
 * non-loopback entry is refused. This is how the local control plane's fake (kwok) pods
 * are backed by real processes on loopback, and why nothing the tests or `make dev` start
 * dials a fake pod IP. Every new resolution is reported to `onResolve` (logs, metrics).
 */
export class PodAddresses {
  private readonly mapFile: string | undefined;
  private readonly onResolve: ((r: Resolution) => void) | undefined;
  private map: Record<string, string> = {};
  private version = "";
  private readonly seen = new Map<string, string>();

  constructor(mapFile?: string, onResolve?: (r: Resolution) => void) {
    this.mapFile = mapFile;
    this.onResolve = onResolve;
  }

  /** True when addresses come only from the map file. */
  get mapped(): boolean {
    return this.mapFile !== undefined;
  }

  addressOf(pod: PodAddressInfo, port: number): string | undefined {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    let r: Resolution;
    if (this.mapFile) {
      this.reload();
      const mapped = this.map[key];
      r =
        mapped && isLoopbackAddress(mapped)
          ? { pod: key, via: "map", address: mapped }
          : { pod: key, via: "none" };
    } else {
      r = pod.status?.podIP
        ? { pod: key, via: "pod-ip", address: `${pod.status.podIP}:${port}` }
        : { pod: key, via: "none" };
    }
    this.report(r);
    return r.via === "none" ? undefined : r.address;
  }

  private report(r: Resolution): void {
    if (!this.onResolve) return;
    const value = r.via === "none" ? "" : r.address;
    if (this.seen.get(r.pod) === value) return;
    if (this.seen.size > 10_000) this.seen.clear();
    this.seen.set(r.pod, value);
    this.onResolve(r);
  }

  private reload(): void {
    try {
      // The file is replaced whole (renamed over): a new inode, though two writes within
      // one tick of the file system's clock share an mtime.
      const st = statSync(this.mapFile!);
      const version = `${st.mtimeMs}:${st.ino}:${st.size}`;
      if (version === this.version) return;
      const parsed = JSON.parse(readFileSync(this.mapFile!, "utf8")) as unknown;
      this.map = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, string>) : {};
      this.version = version;
    } catch {
      this.map = {};
    }
  }
}
