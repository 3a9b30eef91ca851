// A minimal tar writer (POSIX ustar, with a pax extended header for names that do not fit):
// regular files and directories, enough for "download this directory". Readers: GNU tar,
// bsdtar, any pax-aware library.

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
