// Label selectors evaluated by the gateway itself, for lists answered from its cache. The
// syntax is what checkLabelSelector (routes/validate.ts) lets through, and the meaning is
// Kubernetes': requirements are ANDed; `key` and `!key` test presence; `=`/`==` and `in`
// need the label with one of the values; `!=` and `notin` also match objects without it.
export type Labels = Readonly<Record<string, string>> | undefined;

type Requirement =
  { op: "exists" | "absent"; key: string } | { op: "in" | "notin"; key: string; values: ReadonlySet<string> };

export type Selector = (labels: Labels) => boolean;

const SET = /^(\S+?)\s+(in|notin)\s*\((.*)\)$/;
const EQUALITY = /^([^\s=!]+)\s*(==|=|!=)\s*(\S*)$/;
const KEY = /^[A-Za-z0-9_./-]+$/;

/** Splits at the commas outside parentheses. */
function requirements(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out.map((r) => r.trim());
}

function requirement(text: string): Requirement {
  const set = SET.exec(text);
  if (set) {
    const values = set[3]!.split(",").map((v) => v.trim());
    return { op: set[2] as "in" | "notin", key: key(set[1]!), values: new Set(values) };
  }
  const eq = EQUALITY.exec(text);
  if (eq) return { op: eq[2] === "!=" ? "notin" : "in", key: key(eq[1]!), values: new Set([eq[3]!]) };
  if (text.startsWith("!")) return { op: "absent", key: key(text.slice(1).trim()) };
  return { op: "exists", key: key(text) };
}

function key(text: string): string {
  if (!KEY.test(text)) throw new Error(`not a label key: ${JSON.stringify(text)}`);
  return text;
}

function matches(r: Requirement, labels: Labels): boolean {
  const has = labels !== undefined && Object.hasOwn(labels, r.key);
  switch (r.op) {
    case "exists":
      return has;
    case "absent":
      return !has;
    case "in":
      return has && r.values.has(labels[r.key]!);
    case "notin":
      return !has || !r.values.has(labels[r.key]!);
  }
}

/**
 * The selector as a predicate over an object's labels. Throws on text it does not read
 * (callers check the syntax first; a throw sends the request to the apiserver instead).
 */
export function parseSelector(text: string | undefined): Selector {
  if (text === undefined || text.trim() === "") return () => true;
  const reqs = requirements(text).map(requirement);
  return (labels) => reqs.every((r) => matches(r, labels));
}
