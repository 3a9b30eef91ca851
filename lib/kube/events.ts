// Kubernetes Events about agentry objects (core/v1 Event), like `kubectl describe` shows.
// Repeats of the same event within a short time are counted on one Event object instead
// of creating new ones.
import { shortHash } from "./names.ts";
import type { KubeApi, KubeObject } from "./client.ts";
import type { Logger } from "../log.ts";
import { errorMessage } from "../log.ts";

export type EventType = "Normal" | "Warning";

export interface Recorder {
  event(obj: KubeObject, type: EventType, reason: string, message: string): void;
}

interface Seen {
  name: string;
  count: number;
  first: string;
}

export interface EventRecorderOptions {
  /** Told of every Event written (created, or a repeat counted on one), e.g. to count writes. */
  onWrite?: (verb: "create" | "patch") => void;
  now?: () => Date;
}

export class EventRecorder implements Recorder {
  private readonly client: Pick<KubeApi, "create" | "mergePatch">;
  private readonly component: string;
  private readonly log: Logger;
  private readonly options: EventRecorderOptions;
  private readonly seen = new Map<string, Seen>();

  constructor(
    client: Pick<KubeApi, "create" | "mergePatch">,
    component: string,
    log: Logger,
    options: EventRecorderOptions = {},
  ) {
    this.client = client;
    this.component = component;
    this.log = log;
    this.options = options;
  }

  event(obj: KubeObject, type: EventType, reason: string, message: string): void {
    void this.write(obj, type, reason, message).catch((err: unknown) => {
      this.log.warn("could not record event", {
        reason,
        error: errorMessage(err),
      });
    });
  }

  private async write(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = obj.metadata.namespace ?? "default";
    const key = `${obj.metadata.uid}/${type}/${reason}/${message}`;
    const now = (this.options.now?.() ?? new Date()).toISOString();
    const prior = this.seen.get(key);
    if (prior) {
      prior.count++;
      const patched = await this.client
        .mergePatch(
          { apiVersion: "v1", kind: "Event", metadata: { namespace, name: prior.name } },
          { count: prior.count, lastTimestamp: now },
        )
        .then(() => true)
        .catch(() => false);
      if (patched) return this.options.onWrite?.("patch");
    }
    const name = `${obj.metadata.name}.${shortHash([key, now], 12)}`;
    this.seen.set(key, { name, count: 1, first: now });
    if (this.seen.size > 5000) this.seen.delete(this.seen.keys().next().value as string);
    await this.client.create({
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata.name,
        namespace,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
      reason,
      message: message.slice(0, 1024),
      type,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: this.component },
      reportingComponent: this.component,
    });
    this.options.onWrite?.("create");
  }
}
