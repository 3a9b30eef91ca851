// A guard against deeply nested request bodies: JSON.parse accepts nesting thousands of
// levels deep, but structuredClone, validation and JSON.stringify recurse and would
// overflow the stack (a 500). Bodies nested deeper than any agentry object are refused
// with a 400 first. Iterative, so the check itself cannot overflow.

/** The deepest real agentry object nests about 10 levels; this leaves ample room. */
export const MAX_BODY_DEPTH = 64;

/** True when `value` has objects or arrays nested more than `limit` levels deep. */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth + 1 > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}
