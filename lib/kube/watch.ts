// A watch on the apiserver over the project's own client: one long GET with watch=true,
// read line by line, each line one event. `done` is called once, when the server ends the
// watch (its timeout), on an error, or after abort() (then with no error).
import type { KubeClient, KubeObject } from "./client.ts";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

/** An ERROR event's object: a Status, e.g. code 410 when the resourceVersion is too old. */
export interface WatchStatus {
  code?: number;
  reason?: string;
  message?: string;
}

export interface WatchHandle {
  abort(): void;
}

/** How long a watch may stay silent before it is taken for dead (the server closes it sooner). */
const SILENCE_MS = 11 * 60_000;

export class Watch {
  private readonly client: KubeClient;

  constructor(client: KubeClient) {
    this.client = client;
  }

  /**
   * Watches `path` (a collection) from the query's resourceVersion. Never throws: a failure
   * to start reaches `done` too. `accept` asks for another representation (e.g. metadata only).
   */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (type: WatchEventType, obj: KubeObject & WatchStatus) => void,
    done: (err?: unknown) => void,
    accept?: string,
  ): Promise<WatchHandle> {
    const controller = new AbortController();
    let finished = false;
    let silence: NodeJS.Timeout | undefined;
    const finish = (err?: unknown) => {
      if (finished) return;
      finished = true;
      clearTimeout(silence);
      const aborted = controller.signal.aborted;
      controller.abort();
      done(aborted ? undefined : err);
    };
    // Re-armed on every chunk (refresh: no new timer per chunk).
    const alive = () => {
      if (silence) return void silence.refresh();
      silence = setTimeout(() => finish(new Error(`the watch of ${path} was silent too long`)), SILENCE_MS);
      silence.unref();
    };
    try {
      const res = await this.client.openStream("GET", path, {
        query: { ...query, watch: true },
        signal: controller.signal,
        ...(accept ? { accept } : {}),
      });
      alive();
      let pending = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        alive();
        pending += chunk;
        for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (!line.trim() || finished) continue;
          let event: { type: WatchEventType; object: KubeObject & WatchStatus };
          try {
            event = JSON.parse(line) as typeof event;
          } catch {
            return finish(new Error(`the watch of ${path} sent a line that is not JSON`));
          }
          onEvent(event.type, event.object);
        }
      });
      res.on("end", () => finish());
      res.on("error", (err) => finish(err));
      res.on("close", () => finish());
    } catch (err) {
      finish(err);
    }
    return { abort: () => finish() };
  }
}
