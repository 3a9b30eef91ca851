// ESLint rule `agentry/folder-imports`: which top-level folder may import which. A program
// (operator, gateway, webhook, runtimes/agent, runtimes/sandbox) imports lib/, contracts/
// and api/, never another program's folder; lib/ does not import programs, contracts/ only
// api/, api/ nothing of ours; clients/typescript/ nothing, cli/ that client and lib/. Unit tests
// may also use test/harness/. test/, bench/ and hack/ drive the programs and may import anything. Relative specifiers are resolved against the
// importing file, so "../sandbox/x.ts" from runtimes/agent is caught like any other path.
// (eslint.config.js loads this file through Node's own type stripping.)
import { dirname, relative, resolve, sep } from "node:path";
import type { Rule } from "eslint";

const PROGRAMS = ["operator", "gateway", "webhook", "runtimes/agent", "runtimes/sandbox"];
const SHARED = ["lib", "contracts", "api"];

/** The folders each folder may import (besides itself). */
export const ALLOWED: Record<string, string[]> = {
  api: [],
  // The generated client stands alone (it is what outside code imports). The CLI talks to the
  // gateway only through it, and shares plumbing with the other programs through lib/ (the
  // tar reader beside the sandbox's tar writer, duration flags).
  "clients/typescript": [],
  cli: ["clients/typescript", "lib"],
  contracts: ["api"],
  lib: ["contracts", "api"],
  ...Object.fromEntries(PROGRAMS.map((p) => [p, SHARED])),
};

const ROOMS = Object.keys(ALLOWED).sort((a, b) => b.length - a.length);

/** The folder of ALLOWED a repository path belongs to, or undefined (unrestricted). */
export function roomOf(path: string): string | undefined {
  const p = path.split(sep).join("/");
  return ROOMS.find((room) => p === room || p.startsWith(`${room}/`));
}

export const folderImports: Rule.RuleModule = {
  meta: {
    type: "problem",
    docs: { description: "keep each top-level folder to the folders it may import (docs/adr/0004)" },
    schema: [{ type: "object", properties: { root: { type: "string" } }, additionalProperties: false }],
    messages: {
      forbidden:
        "{{from}}/ may not import {{to}}/ ({{path}}); it may import {{allowed}}: move what both need to lib/ or contracts/",
    },
  },
  create(context) {
    const root = (context.options[0] as { root?: string } | undefined)?.root ?? context.cwd;
    const file = relative(root, context.filename);
    const from = roomOf(file);
    if (!from) return {};
    const check = (node: { type: string; value?: unknown } | null | undefined) => {
      const spec = node?.type === "Literal" && typeof node.value === "string" ? node.value : undefined;
      if (!node || !spec?.startsWith(".")) return;
      const target = relative(root, resolve(dirname(context.filename), spec))
        .split(sep)
        .join("/");
      if (target.startsWith("..")) return;
      if (file.endsWith(".test.ts") && target.startsWith("test/harness/")) return;
      const to = roomOf(target) ?? target.split("/")[0]!;
      if (to === from || ALLOWED[from]!.includes(to)) return;
      const allowed = [from, ...ALLOWED[from]!].map((f) => `${f}/`).join(", ");
      context.report({
        node,
        messageId: "forbidden",
        data: { from, to, path: target, allowed },
      });
    };
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
    };
  },
};

export const plugin = { rules: { "folder-imports": folderImports } };
