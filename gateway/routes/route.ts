// The route template of a request path, for metric labels and the request log (bounded
// cardinality: names become {name}).
import { KINDS } from "../../api/v1alpha1/index.ts";
import { CONSOLE_PATH } from "../console.ts";

const PLURALS = new Set(KINDS.map((k) => k.plural));

/** Route template of a path, for metric labels (bounded cardinality). */
export function routeOf(path: string): string {
  if (path === "/healthz" || path === "/readyz" || path === "/openapi.json") return path;
  if (path === CONSOLE_PATH || path.startsWith(`${CONSOLE_PATH}/`)) return CONSOLE_PATH;
  const s = path.split("/");
  if (s[1] !== "v1") return "other";
  if (s.length === 3 && PLURALS.has(s[2]!)) return `/v1/${s[2]}`;
  if (s.length === 3 && s[2] === "whoami") return "/v1/whoami";
  if (s.length === 5 && s[2] === "namespaces" && (s[4] === "events" || s[4] === "permissions"))
    return `/v1/namespaces/{namespace}/${s[4]}`;
  const watch = s[2] === "watch" ? 1 : 0;
  const plural = s[4 + watch];
  if (s[2 + watch] !== "namespaces" || !plural || !PLURALS.has(plural)) return "other";
  const base = `/v1${watch ? "/watch" : ""}/namespaces/{namespace}/${plural}`;
  const rest = s.slice(5 + watch);
  if (rest.length === 0) return base;
  if (rest.length === 1) return `${base}/{name}`;
  const sub = rest.slice(1).join("/");
  if (
    ["status", "runs", "files", "files/content", "files/archive", "exec", "tasks", "sandboxes"].includes(sub)
  )
    return `${base}/{name}/${sub}`;
  if (rest[1] === "exec" && rest.length === 3) return `${base}/{name}/exec/{execId}`;
  if (rest[1] === "runs" && rest[3] === "logs" && rest.length === 4) return `${base}/{name}/runs/{run}/logs`;
  return "other";
}
