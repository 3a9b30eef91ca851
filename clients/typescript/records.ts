// The records of a streamed answer (`Accept: application/x-ndjson`: exec and tasks), read as
// an async iterator: one JSON value per line, as the gateway writes them.
import type { components } from "./schema.ts";

export type ExecRecord = components["schemas"]["GatewayExecRecord"];
export type TaskRecord = components["schemas"]["TaskStreamRecord"];

/** The accept header that asks exec and tasks for a stream of records. */
export const NDJSON = "application/x-ndjson";

export async function* records<T>(body: ReadableStream<Uint8Array> | null | undefined): AsyncGenerator<T> {
  if (!body) return;
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, end).trim();
      buffer = buffer.slice(end + 1);
      if (line) yield JSON.parse(line) as T;
    }
  }
  const rest = (buffer + decoder.decode()).trim();
  if (rest) yield JSON.parse(rest) as T;
}
