// Static bearer tokens: a YAML or JSON list of {sha256, user, groups} read from a file or a
// Secret. Only SHA-256 hashes of the tokens are stored; a presented token is hashed and
// looked up.
import { hash } from "node:crypto";
import * as yaml from "js-yaml";
import { z } from "zod";
import type { Identity } from "./identity.ts";
import { errorMessage } from "../../lib/log.ts";

/** The token's SHA-256 in hex (one-shot: no Hash object per request). */
export const hashToken = (token: string): string => hash("sha256", token, "hex");

const Entry = z.object({
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, "must be the hex SHA-256 of the token (64 lowercase hex digits)"),
  user: z.string().min(1),
  groups: z.array(z.string().min(1)).default([]),
});
const File = z.array(Entry);

export type StaticTokens = ReadonlyMap<string, Identity>;

/** Parses a token list; the error names the entry and field that is wrong. */
export function parseTokens(text: string, source: string): StaticTokens {
  let data: unknown;
  try {
    data = yaml.load(text);
  } catch (err) {
    throw new Error(`${source}: not valid YAML/JSON: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  const parsed = File.safeParse(data ?? []);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `${source}: ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"} ` +
        `(expected a list of {sha256, user, groups})`,
    );
  }
  const map = new Map<string, Identity>();
  for (const e of parsed.data) map.set(e.sha256, { user: e.user, groups: e.groups, via: "token" });
  return map;
}
