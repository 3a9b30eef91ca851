// A collection kept listed and watched with our own client: `list` says where to watch from
// (and refills whatever the caller keeps), the watch streams events from there, a watch that
// ends is resumed from the last resourceVersion seen (events and bookmarks), 410 Gone means
// list again, and any other failure backs off (0.5 s doubling to 5 s) before trying again.
// The events are read line by line as the apiserver sends them (JSON per line).
import type { KubeClient, KubeObject } from "./client.ts";
import type { Logger } from "../log.ts";
import { errorMessage } from "../log.ts";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchEvent {
  type: WatchEventType;
  object: KubeObject & { code?: number };
}

/** Calls `onEvent` for every JSON line of a watch body until it ends. */
export async function readWatchEvents(
  body: AsyncIterable<Uint8Array>,
  onEvent: (e: WatchEvent) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = "";
  const line = (text: string) => {
    if (text.trim() !== "") onEvent(JSON.parse(text) as WatchEvent);
  };
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      line(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  }
  line(buffered + decoder.decode());
}

export interface ListWatchOptions {
  /** Collection path (client.collectionPath). */
  path: string;
  /** Accept header of the watch (e.g. PartialObjectMetadata). */
  accept?: string;
  signal: AbortSignal;
  log: Logger;
  /** The apiserver ends each watch after this long (a little randomised); it is resumed. */
  timeoutSeconds?: number;
}

export interface ListWatchHandlers {
  /** Lists (again) and returns the resourceVersion to watch from. */
  list: () => Promise<string>;
  /** Every event but ERROR, in order. */
  event: (e: WatchEvent) => void;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

/** Runs until `options.signal` aborts. */
export async function listAndWatch(
  client: KubeClient,
  options: ListWatchOptions,
  handlers: ListWatchHandlers,
): Promise<void> {
  const { signal, log } = options;
  let rv: string | undefined;
  let delay = 500;
  while (!signal.aborted) {
    try {
      rv ??= await handlers.list();
      let gone = false;
      let received = false;
      const started = Date.now();
      const res = await client.stream("GET", options.path, {
        signal,
        ...(options.accept ? { accept: options.accept } : {}),
        query: {
          watch: 1,
          resourceVersion: rv,
          allowWatchBookmarks: true,
          timeoutSeconds: Math.round((options.timeoutSeconds ?? 300) * (1 + Math.random() / 5)),
        },
      });
      await readWatchEvents(res.body as AsyncIterable<Uint8Array>, (e) => {
        if (e.type === "ERROR") {
          if (e.object.code === 410) gone = true;
          return;
        }
        handlers.event(e);
        rv = e.object.metadata?.resourceVersion ?? rv;
        received = true;
        delay = 500;
      });
      if (gone) rv = undefined;
      // A watch that ends at once with nothing in it (an apiserver going away) is not
      // resumed in a tight loop.
      else if (!received && Date.now() - started < 1000) throw new Error("the watch ended at once");
    } catch (err) {
      if (signal.aborted) return;
      if ((err as { status?: number }).status === 410) rv = undefined;
      log.warn("list or watch failed; retrying", {
        path: options.path,
        error: errorMessage(err),
        retryInMs: delay,
      });
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 5_000);
    }
  }
}
