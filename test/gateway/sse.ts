// A small Server-Sent Events client for the tests: frames as they arrive, comments included.
export interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

export interface SseClient {
  status: number;
  frames: SseFrame[];
  /** True once the stream ended (closed by either side, or failed). */
  readonly ended: boolean;
  /** Events only (frames with an event name). */
  events(): SseFrame[];
  close(): void;
}

export async function openSse(url: string, token: string, lastEventId?: string): Promise<SseClient> {
  const ac = new AbortController();
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "text/event-stream" };
  if (lastEventId) headers["last-event-id"] = lastEventId;
  const res = await fetch(url, { headers, signal: ac.signal });
  const frames: SseFrame[] = [];
  let ended = !res.ok || !res.body;
  if (res.ok && res.body) {
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let i: number;
          while ((i = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, i);
            buffer = buffer.slice(i + 2);
            const frame: SseFrame = {};
            for (const line of block.split("\n")) {
              if (line.startsWith(":")) frame.comment = line.slice(1).trim();
              else {
                const c = line.indexOf(":");
                const key = line.slice(0, c) as "id" | "event" | "data";
                if (key === "id" || key === "event" || key === "data")
                  frame[key] = line.slice(c + 1).trimStart();
              }
            }
            frames.push(frame);
          }
        }
      } catch {
        // aborted
      }
      ended = true;
    })();
  }
  return {
    status: res.status,
    frames,
    get ended() {
      return ended;
    },
    events: () => frames.filter((f) => f.event),
    close: () => ac.abort(),
  };
}

export const objectName = (f: SseFrame): string =>
  (JSON.parse(f.data ?? "{}") as { metadata?: { name?: string } }).metadata?.name ?? "";
