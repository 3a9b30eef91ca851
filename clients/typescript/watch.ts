// The live events of one kind in one namespace: GET /v1/watch/namespaces/{ns}/{plural}
// (Server-Sent Events) read as an async iterator. Resumable: pass the last event's id as
// lastEventId. `reset` means list again; `revoked` that the caller may no longer watch.
export interface WatchEvent {
  id?: string;
  /** ADDED, MODIFIED, DELETED, reset or revoked. */
  type: string;
  /** The object for ADDED/MODIFIED/DELETED; the reason's text otherwise. */
  data: unknown;
}

export interface WatchOptions {
  baseUrl: string;
  token?: string | undefined;
  namespace: string;
  plural: string;
  lastEventId?: string;
  signal?: AbortSignal;
  fetch?: typeof globalThis.fetch;
  /** Called once the stream is open (nothing after it is missed), before the first event. */
  onOpen?: () => Promise<void> | void;
}

export async function* watch(o: WatchOptions): AsyncGenerator<WatchEvent> {
  const url = `${o.baseUrl.replace(/\/+$/, "")}/v1/watch/namespaces/${encodeURIComponent(o.namespace)}/${o.plural}`;
  const res = await (o.fetch ?? fetch)(url, {
    headers: {
      accept: "text/event-stream",
      ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
      ...(o.lastEventId ? { "last-event-id": o.lastEventId } : {}),
    },
    ...(o.signal ? { signal: o.signal } : {}),
  });
  if (!res.ok || !res.body) {
    const text = await res.text();
    let problem: { title?: string; detail?: string } = {};
    try {
      problem = JSON.parse(text) as typeof problem;
    } catch {
      problem = { detail: text };
    }
    throw Object.assign(new Error(`${problem.title ?? `HTTP ${res.status}`}: ${problem.detail ?? ""}`), {
      status: res.status,
    });
  }
  await o.onOpen?.();
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event: { id?: string; type: string; data: string[] } = { type: "message", data: [] };
      for (const line of frame.split("\n")) {
        if (line.startsWith(":")) continue; // heartbeat
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "id") event.id = value;
        else if (field === "event") event.type = value;
        else if (field === "data") event.data.push(value);
      }
      if (event.data.length === 0 && event.id === undefined) continue;
      const text = event.data.join("\n");
      let data: unknown = text;
      try {
        data = JSON.parse(text);
      } catch {
        // reset/revoked carry text
      }
      yield { ...(event.id !== undefined ? { id: event.id } : {}), type: event.type, data };
    }
  }
}
