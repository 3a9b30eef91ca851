// A minimal tar writer and reader (POSIX ustar, with a pax extended header for names that do
// not fit): regular files and directories, enough for "download this directory" (the sandbox
// writes, `agentry cp` reads). Other readers: GNU tar, bsdtar, any pax-aware library.
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { once } from "node:events";

const BLOCK = 512;

export interface TarEntry {
  /** Relative path, "/"-separated; directories may end with "/". */
  path: string;
  type: "file" | "dir";
  /** Bytes that follow the header (files); 0 for directories. */
  size: number;
  mode: number;
  mtime: Date;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

/** The 512-byte header block(s) of an entry: a pax header first when the path is long or not ASCII. */
export function tarHeader(entry: TarEntry): Buffer {
  const path = entry.type === "dir" && !entry.path.endsWith("/") ? `${entry.path}/` : entry.path;
  const fits = Buffer.byteLength(path) <= 100 && /^[\x20-\x7e]*$/.test(path);
  const blocks: Buffer[] = [];
  if (!fits) {
    const body = Buffer.from(paxRecord("path", path));
    blocks.push(ustar(`PaxHeaders/${asciiName(path)}`, "x", body.length, 0o644, entry.mtime));
    blocks.push(padded(body));
  }
  blocks.push(
    ustar(
      fits ? path : asciiName(path),
      entry.type === "dir" ? "5" : "0",
      entry.type === "dir" ? 0 : entry.size,
      entry.mode & 0o7777,
      entry.mtime,
    ),
  );
  return Buffer.concat(blocks);
}

/** Zero bytes that round a file of `size` bytes up to whole blocks. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The end of an archive: two zero blocks. */
export const TAR_END = Buffer.alloc(2 * BLOCK);

function ustar(name: string, type: string, size: number, mode: number, mtime: Date): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name.slice(0, 100), 0, 100, "utf8");
  h.write(octal(mode, 8), 100, 8, "ascii");
  h.write(octal(0, 8), 108, 8, "ascii");
  h.write(octal(0, 8), 116, 8, "ascii");
  h.write(octal(size, 12), 124, 12, "ascii");
  h.write(octal(Math.max(0, Math.floor(mtime.getTime() / 1000)), 12), 136, 12, "ascii");
  h.write("        ", 148, 8, "ascii");
  h.write(type, 156, 1, "ascii");
  h.write("ustar\0", 257, 6, "ascii");
  h.write("00", 263, 2, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + " ", 148, 8, "ascii");
  return h;
}

/** A pax record "<len> key=value\n", whose length counts its own digits. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(rest);
  let digits = String(len).length;
  while (String(len + digits).length !== digits) digits++;
  len += digits;
  return `${len}${rest}`;
}

/** A stand-in ustar name for old readers: the path's ASCII, cut to fit. */
function asciiName(path: string): string {
  return path.replace(/[^\x20-\x7e]/g, "_").slice(-99);
}

function padded(body: Buffer): Buffer {
  return Buffer.concat([body, tarPadding(body.length)]);
}

/** What extractTar wrote: each entry's relative path and type. */
export interface ExtractedEntry {
  path: string;
  type: "file" | "dir";
  size: number;
}

/** Reads exact byte counts from a stream of chunks. */
class Chunks {
  private buf = Buffer.alloc(0);
  private readonly it: AsyncIterator<Uint8Array>;
  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }
  /** Up to `max` bytes (at least one), or undefined at the end of the stream. */
  async some(max: number): Promise<Buffer | undefined> {
    while (this.buf.length === 0) {
      const r = await this.it.next();
      if (r.done) return undefined;
      this.buf = Buffer.from(r.value);
    }
    const out = this.buf.subarray(0, max);
    this.buf = this.buf.subarray(out.length);
    return out;
  }
  /** Exactly n bytes, or undefined when the stream ends before the first byte. */
  async exact(n: number): Promise<Buffer | undefined> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const b = await this.some(n - got);
      if (!b) {
        if (got === 0) return undefined;
        throw new Error("the archive ends in the middle of an entry");
      }
      parts.push(b);
      got += b.length;
    }
    return Buffer.concat(parts);
  }
  async skip(n: number): Promise<void> {
    for (let left = n; left > 0;) {
      const b = await this.some(left);
      if (!b) throw new Error("the archive ends in the middle of an entry");
      left -= b.length;
    }
  }
}

const text = (h: Buffer, at: number, len: number) => {
  const field = h.subarray(at, at + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? len : nul).toString("utf8");
};
const number = (h: Buffer, at: number, len: number) => {
  const s = text(h, at, len).trim();
  if (!/^[0-7]*$/.test(s)) throw new Error(`not a tar archive (a number field reads "${s}")`);
  return s ? parseInt(s, 8) : 0;
};

/** The relative segments of an archive path; refuses absolute paths and "..". */
function safeSegments(path: string): string[] {
  if (path.startsWith("/")) throw new Error(`the archive holds an absolute path: ${path}`);
  const segments = path.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.includes("..")) throw new Error(`the archive holds a path leading out: ${path}`);
  return segments;
}

/**
 * Extracts a tar stream into `dest` (created if missing): regular files and directories;
 * links and other types are skipped. Paths are kept inside `dest` (absolute paths and ".."
 * are refused), and modes keep only the permission bits.
 */
export async function extractTar(source: AsyncIterable<Uint8Array>, dest: string): Promise<ExtractedEntry[]> {
  const input = new Chunks(source);
  const written: ExtractedEntry[] = [];
  await mkdir(dest, { recursive: true });
  let longPath: string | undefined;
  for (;;) {
    const h = await input.exact(BLOCK);
    if (!h || h.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (sum !== number(h, 148, 8)) throw new Error("not a tar archive (a header's checksum does not match)");
    const type = String.fromCharCode(h[156]!) || "0";
    const size = number(h, 124, 12);
    const padding = tarPadding(size).length;
    if (type === "x" || type === "L") {
      const body = (await input.exact(size + padding))?.subarray(0, size).toString("utf8") ?? "";
      longPath = type === "L" ? body.replace(/\0+$/, "") : (paxPath(body) ?? longPath);
      continue;
    }
    const prefix = text(h, 345, 155);
    const name =
      longPath ?? (prefix && text(h, 257, 5) === "ustar" ? `${prefix}/${text(h, 0, 100)}` : text(h, 0, 100));
    longPath = undefined;
    const segments = safeSegments(name);
    const mode = number(h, 100, 8) & 0o777;
    if ((type === "5" || (type === "0" && name.endsWith("/"))) && size === 0) {
      if (segments.length > 0) await mkdir(join(dest, ...segments), { recursive: true, mode: mode | 0o700 });
      written.push({ path: segments.join("/"), type: "dir", size: 0 });
      continue;
    }
    if ((type !== "0" && type !== "\0" && type !== "7") || segments.length === 0) {
      await input.skip(size + padding); // links, devices, global headers: left out
      continue;
    }
    const target = join(dest, ...segments);
    await mkdir(dirname(target), { recursive: true });
    const out = createWriteStream(target, { mode: mode || 0o644 });
    for (let left = size; left > 0;) {
      const b = await input.some(left);
      if (!b) throw new Error("the archive ends in the middle of a file");
      if (!out.write(b)) await once(out, "drain");
      left -= b.length;
    }
    out.end();
    await once(out, "close");
    await input.skip(padding);
    written.push({ path: segments.join("/"), type: "file", size });
  }
  return written;
}

/** The `path` of a pax extended header's records. */
function paxPath(body: string): string | undefined {
  let path: string | undefined;
  let rest = Buffer.from(body);
  while (rest.length > 0) {
    const space = rest.indexOf(0x20);
    const len = parseInt(rest.subarray(0, space).toString(), 10);
    if (!(len > 0)) break;
    const record = rest.subarray(space + 1, len - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (record.slice(0, eq) === "path") path = record.slice(eq + 1);
    rest = rest.subarray(len);
  }
  return path;
}
