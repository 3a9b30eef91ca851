// Request bodies and JSON answers on node:http, with size limits: what the sandbox and
// agent runtimes' handlers share. Too large a body is a 413, bad JSON or a body that fails
// its schema a 400 naming each field.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { z } from "zod";
import { badRequest, ProblemError } from "./problem.ts";
import { errorMessage } from "../log.ts";

export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export function checkLength(req: IncomingMessage, limit: number): void {
  const length = Number(req.headers["content-length"] ?? 0);
  if (length > limit) throw new ProblemError(413, `request body is larger than the limit of ${limit} bytes`);
}

/** Reads and validates a JSON body; an empty body counts as {}. */
export async function readJson<T>(
  req: IncomingMessage,
  schema: z.ZodType<T>,
  limit = 1024 * 1024,
): Promise<T> {
  checkLength(req, limit);
  const text = (await readBody(req, limit)).toString("utf8").trim();
  let value: unknown;
  try {
    value = text === "" ? {} : JSON.parse(text);
  } catch (err) {
    throw badRequest(`request body is not valid JSON: ${errorMessage(err)}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw badRequest(
      parsed.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "body"}: ${i.message}`).join("; "),
    );
  return parsed.data;
}

/** Collects a body up to `limit` bytes; beyond it stops reading (without destroying the socket) and rejects. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off("data", onData);
      req.pause();
      reject(new ProblemError(413, `request body is larger than the limit of ${limit} bytes`));
    };
    req.on("data", onData);
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

/** Resolves once `res` can take more (drain) or is gone (close): backpressure for streamed answers. */
export function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
  });
}

/** Writes a chunk of a streamed answer, waiting while the client is slow to read. */
export async function writeChunk(res: ServerResponse, chunk: Uint8Array | string): Promise<void> {
  if (!res.write(chunk)) await drained(res);
}
