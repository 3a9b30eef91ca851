// Reads Prometheus text exposition: the sum of a metric's samples, for tests and benchmarks.

/** Sum of the samples of `name` at `url` whose labels include `labels`. */
export async function metricSum(
  url: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(url)).text();
  const sample = new RegExp(`^${name}(?:\\{([^}]*)\\})? ([0-9.e+-]+|NaN)$`);
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = sample.exec(line);
    if (!m) continue;
    const have = new Map([...(m[1] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(m[2]);
  }
  return sum;
}
