// Hostile HTTP requests for the REST gateway and the sandbox runtime's API: broken auth,
// wrong media types, malformed and huge JSON, deep nesting, wrong types, unicode and
// traversal in paths, bad query parameters, injection attempts. Each must get a 4xx.
export interface HostileRequest {
  name: string;
  method: string;
  /** Path with `{ns}` standing for the test's namespace. */
  path: string;
  body?: string;
  headers?: Record<string, string>;
  /** The bearer token; null sends none; undefined sends the test's valid one. */
  token?: string | null;
}

const json = (v: unknown) => JSON.stringify(v);
const ws = (spec: unknown, metadata: Record<string, unknown> = { name: "w" }) => json({ metadata, spec });
const pl = (spec: unknown) => json({ metadata: { name: "p" }, spec });
const arBody = (spec: unknown) => json({ metadata: { name: "a" }, spec });
const deepArray = (d: number) => `{"metadata":{"name":"w"},"spec":${"[".repeat(d)}${"]".repeat(d)}}`;
const deepObject = (d: number) => `{"metadata":{"name":"w"},"spec":${'{"a":'.repeat(d)}1${"}".repeat(d)}}`;

const W = "/v1/namespaces/{ns}/workspaces";
const P = "/v1/namespaces/{ns}/pipelines";
const A = "/v1/namespaces/{ns}/agentruntimes";
const post = (name: string, path: string, body: string, headers: Record<string, string> = {}) => ({
  name,
  method: "POST",
  path,
  body,
  headers: { "content-type": "application/json", ...headers },
});

const auth: HostileRequest[] = [
  { name: "no token", method: "GET", path: W, token: null },
  { name: "wrong token", method: "GET", path: W, token: "not-the-token" },
  { name: "empty bearer", method: "GET", path: W, token: "", headers: { authorization: "Bearer " } },
  { name: "basic auth", method: "GET", path: W, token: null, headers: { authorization: "Basic YTpi" } },
  { name: "token with a newline escape", method: "GET", path: W, token: "abc%0d%0aX-Evil: 1" },
  { name: "10 kB token", method: "GET", path: W, token: "t".repeat(10_000) },
  { ...post("write without a token", W, ws({ fleetRef: { name: "f" } })), token: null },
];

const media: HostileRequest[] = [
  {
    ...post("text/plain body", W, ws({ fleetRef: { name: "f" } })),
    headers: { "content-type": "text/plain" },
  },
  { ...post("XML body", W, "<workspace/>"), headers: { "content-type": "application/xml" } },
  {
    ...post("form body", W, "metadata.name=w"),
    headers: { "content-type": "application/x-www-form-urlencoded" },
  },
  {
    name: "JSON patch media type",
    method: "PATCH",
    path: `${W}/w`,
    body: json([{ op: "remove", path: "/spec" }]),
    headers: { "content-type": "application/json-patch+json" },
  },
  {
    name: "YAML body",
    method: "POST",
    path: W,
    body: "metadata: {name: w}",
    headers: { "content-type": "application/yaml" },
  },
];

const malformed: HostileRequest[] = [
  post("unclosed object", W, "{"),
  post("missing value", W, '{"metadata":}'),
  post("trailing garbage", W, `${ws({ fleetRef: { name: "f" } })}xyz`),
  post("single quotes", W, "{'metadata':{'name':'w'}}"),
  post("NaN", W, '{"metadata":{"name":"w"},"spec":{"fleetRef":{"name":"f"},"x":NaN}}'),
  post("JSON null", W, "null"),
  post("JSON array", W, "[]"),
  post("JSON string", W, '"w"'),
  post("JSON number", W, "42"),
  post("empty object", W, "{}"),
  post("invalid UTF-8", W, '{"metadata":{"name":"\udc80"}}'),
  post("__proto__ pollution", W, '{"__proto__":{"admin":true},"metadata":{"name":"w"}}'),
  post("constructor pollution", W, '{"constructor":{"prototype":{"x":1}},"metadata":{"name":"w"}}'),
];

const size: HostileRequest[] = [
  post("2 MB body", W, ws({ fleetRef: { name: "f" }, x: "x".repeat(2_000_000) })),
  post("deep array nesting (5,000)", W, deepArray(5_000)),
  post("deep array nesting (100,000)", W, deepArray(100_000)),
  post("deep object nesting (5,000)", W, deepObject(5_000)),
  post("deep object nesting (50,000)", W, deepObject(50_000)),
  post(
    "100,000 keys",
    W,
    json({
      metadata: { name: "w" },
      spec: Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, 1])),
    }),
  ),
  post(
    "step input of 70 kB",
    P,
    pl({ steps: [{ name: "a", image: "r.example/t:1", input: "x".repeat(70_000) }] }),
  ),
];

const types: HostileRequest[] = [
  post("spec is a string", W, ws("fleet")),
  post("spec is an array", W, ws([])),
  post("metadata is a string", W, json({ metadata: "w", spec: { fleetRef: { name: "f" } } })),
  post("name is a number", W, ws({ fleetRef: { name: "f" } }, { name: 7 })),
  post("fleetRef is a string", W, ws({ fleetRef: "f" })),
  post("ownerId is an object", W, ws({ fleetRef: { name: "f" }, ownerId: { a: 1 } })),
  post("port is text", A, arBody({ image: "r.example/a:1", port: "http" })),
  post("env is an object", A, arBody({ image: "r.example/a:1", env: { A: "b" } })),
  post("steps is an object", P, pl({ steps: { a: 1 } })),
  post(
    "maxReplicas is text",
    "/v1/namespaces/{ns}/sandboxfleets",
    json({ metadata: { name: "f" }, spec: { template: { image: "r.example/s:1" }, maxReplicas: "3" } }),
  ),
  post("labels is a list", W, ws({ fleetRef: { name: "f" } }, { name: "w", labels: ["a"] })),
  {
    name: "merge patch that is a list",
    method: "PATCH",
    path: `${W}/w`,
    body: "[1,2]",
    headers: { "content-type": "application/merge-patch+json" },
  },
  {
    name: "replace with a string spec",
    method: "PUT",
    path: `${W}/w`,
    body: ws("x"),
    headers: { "content-type": "application/json" },
  },
];

const names: HostileRequest[] = [
  post("unicode name", W, ws({ fleetRef: { name: "f" } }, { name: "wörk" })),
  post("emoji name", W, ws({ fleetRef: { name: "f" } }, { name: "🤖" })),
  post("right-to-left override in name", W, ws({ fleetRef: { name: "f" } }, { name: "w\u202eexe" })),
  post("name with a slash", W, ws({ fleetRef: { name: "f" } }, { name: "a/b" })),
  post("name ..", W, ws({ fleetRef: { name: "f" } }, { name: ".." })),
  post("name of 300 characters", W, ws({ fleetRef: { name: "f" } }, { name: "w".repeat(300) })),
  post("body namespace differs", W, ws({ fleetRef: { name: "f" } }, { name: "w", namespace: "kube-system" })),
  { name: "GET unicode name", method: "GET", path: `${W}/w%C3%B6rk` },
  { name: "GET name %2e%2e", method: "GET", path: `${W}/%2e%2e` },
  { name: "GET name .%2e", method: "GET", path: `${W}/.%2e` },
  { name: "DELETE name %2e%2e", method: "DELETE", path: `${W}/%2e%2e` },
  { name: "GET name with %2F", method: "GET", path: `${W}/..%2F..%2F..%2Fapi%2Fv1%2Fsecrets` },
  { name: "GET namespace %2e%2e", method: "GET", path: "/v1/namespaces/%2e%2e/workspaces" },
  { name: "GET namespace with %2F", method: "GET", path: "/v1/namespaces/..%2Fkube-system/workspaces" },
  { name: "GET namespace unicode", method: "GET", path: "/v1/namespaces/n%C3%A4/workspaces" },
  { name: "GET name with NUL", method: "GET", path: `${W}/a%00b` },
  { name: "GET invalid percent-encoding", method: "GET", path: `${W}/%E0%A4%A` },
  { name: "unknown resource", method: "GET", path: "/v1/namespaces/{ns}/secrets" },
  { name: "unknown resource with traversal", method: "GET", path: "/v1/namespaces/{ns}/..%2F..%2Fapi" },
  {
    name: "status is read-only",
    method: "PUT",
    path: `${W}/w/status`,
    body: "{}",
    headers: { "content-type": "application/json" },
  },
  { name: "run of a missing pipeline", method: "POST", path: `${P}/missing/runs` },
  { name: "TRACE method", method: "TRACE", path: W },
];

const query: HostileRequest[] = [
  { name: "limit -1", method: "GET", path: `${W}?limit=-1` },
  { name: "limit abc", method: "GET", path: `${W}?limit=abc` },
  { name: "limit 1e9", method: "GET", path: `${W}?limit=1e9` },
  { name: "limit twice", method: "GET", path: `${W}?limit=1&limit=2` },
  { name: "garbage continue token", method: "GET", path: `${W}?continue=garbage` },
  { name: "invalid labelSelector", method: "GET", path: `${W}?labelSelector=!!!` },
  { name: "labelSelector injection", method: "GET", path: `${W}?labelSelector=a%3Db%26fieldSelector%3Dx` },
  post("Idempotency-Key of 300 characters", W, ws({ fleetRef: { name: "f" } }), {
    "idempotency-key": "k".repeat(300),
  }),
  post("Idempotency-Key with a space", W, ws({ fleetRef: { name: "f" } }), { "idempotency-key": "a b" }),
];

const pipelines: HostileRequest[] = [
  post("cron 61 minutes", P, pl({ schedule: "61 * * * *", steps: [{ name: "a", image: "r.example/t:1" }] })),
  post("cron with ;", P, pl({ schedule: "* * * * *;id", steps: [{ name: "a", image: "r.example/t:1" }] })),
  post("cron @reboot", P, pl({ schedule: "@reboot", steps: [{ name: "a", image: "r.example/t:1" }] })),
  post("step name $(id)", P, pl({ steps: [{ name: "$(id)", image: "r.example/t:1" }] })),
  post("step image with a shell command", P, pl({ steps: [{ name: "a", image: "alpine; rm -rf /" }] })),
  post("step image with backticks", P, pl({ steps: [{ name: "a", image: "r.example/`id`:1" }] })),
  post(
    "timeZone traversal",
    P,
    pl({
      schedule: "0 1 * * *",
      timeZone: "../../etc/passwd",
      steps: [{ name: "a", image: "r.example/t:1" }],
    }),
  ),
  post(
    "agentRef across namespaces",
    P,
    pl({ steps: [{ name: "a", agentRef: { name: "x", namespace: "kube-system" } }] }),
  ),
  post(
    "AgentRuntime Secret across namespaces",
    A,
    arBody({ image: "r.example/a:1", envFrom: [{ secretRef: { name: "s", namespace: "kube-system" } }] }),
  ),
  post("Workspace fleet across namespaces", W, ws({ fleetRef: { name: "f", namespace: "kube-system" } })),
];

export const hostileGatewayRequests: HostileRequest[] = [
  ...auth,
  ...media,
  ...malformed,
  ...size,
  ...types,
  ...names,
  ...query,
  ...pipelines,
];

const F = "/workspaces/w1/files";
const file = (name: string, method: string, path: string, body?: string): HostileRequest => ({
  name,
  method,
  path,
  ...(body !== undefined ? { body } : {}),
});
const exec = (name: string, body: string): HostileRequest => ({
  name,
  method: "POST",
  path: "/workspaces/w1/exec",
  body,
  headers: { "content-type": "application/json" },
});

/** Against a sandbox whose workspace w1 exists. */
export const hostileSandboxRequests: HostileRequest[] = [
  file("GET ../", "GET", `${F}/../../../etc/passwd`),
  file("GET %2e%2e", "GET", `${F}/%2e%2e/%2e%2e/etc/passwd`),
  file("GET %2e%2e%2f", "GET", `${F}/%2e%2e%2f%2e%2e%2fetc%2fpasswd`),
  file("GET ..%5c", "GET", `${F}/..%5c..%5cetc%5cpasswd`),
  file("GET absolute %2F", "GET", `${F}/%2Fetc%2Fpasswd`),
  file("GET //", "GET", `${F}//etc/passwd`),
  file("GET NUL", "GET", `${F}/a%00.txt`),
  file("GET overlong UTF-8 dot", "GET", `${F}/%c0%ae%c0%ae/etc/passwd`),
  file("GET full-width dots", "GET", `${F}/%EF%BC%8E%EF%BC%8E/etc/passwd`),
  file("GET a/../../", "GET", `${F}/a/../../w2/x`),
  file("GET 5,000 character path", "GET", `${F}/${"a/".repeat(2_500)}x`),
  file("GET invalid percent-encoding", "GET", `${F}/%E0%A4%A`),
  file("PUT ../", "PUT", `${F}/../escape.txt`, "x"),
  file("PUT %2e%2e", "PUT", `${F}/%2e%2e/escape.txt`, "x"),
  file("PUT %2e%2e%2f", "PUT", `${F}/%2e%2e%2fescape.txt`, "x"),
  file("PUT absolute", "PUT", `${F}/%2Ftmp%2Fescape.txt`, "x"),
  file("PUT NUL", "PUT", `${F}/a%00b`, "x"),
  file("PUT .", "PUT", `${F}/.`, "x"),
  file("PUT over the size limit", "PUT", `${F}/big.bin`, "x".repeat(2 * 1024 * 1024)),
  // Dot segments are resolved as in any URL: "../../w1" would name the route /workspaces/w1.
  file("DELETE ../ out of the API", "DELETE", `${F}/../../../../tmp`),
  file("DELETE %2e%2e", "DELETE", `${F}/%2e%2e`),
  file("DELETE the workspace root", "DELETE", `${F}/.`),
  file("workspace id ..", "GET", "/workspaces/%2e%2e/files/x"),
  file("workspace id with a slash", "PUT", "/workspaces/a%2Fb"),
  file("workspace id unicode", "PUT", "/workspaces/w%C3%B6rk"),
  file("workspace id of 300 characters", "PUT", `/workspaces/${"w".repeat(300)}`),
  file("workspace id with NUL", "PUT", "/workspaces/w%00"),
  exec("exec command as a string", json({ command: "rm -rf /" })),
  exec("exec empty command", json({ command: [] })),
  exec("exec command with a number", json({ command: ["ls", 1] })),
  exec("exec negative timeout", json({ command: ["true"], timeoutSeconds: -1 })),
  exec("exec huge timeout", json({ command: ["true"], timeoutSeconds: 1e12 })),
  exec("exec env as a list", json({ command: ["true"], env: ["A=1"] })),
  exec("exec body not JSON", "rm -rf /"),
  exec("exec body over the limit", json({ command: ["true"], stdin: "x".repeat(3 * 1024 * 1024) })),
  exec(
    "exec nested 50,000 deep",
    `{"command":["true"],"env":${'{"a":'.repeat(50_000)}1${"}".repeat(50_000)}}`,
  ),
  {
    name: "exec without the token",
    method: "POST",
    path: "/workspaces/w1/exec",
    body: json({ command: ["id"] }),
    token: null,
  },
  { name: "files without the token", method: "GET", path: `${F}/a.txt`, token: null },
  { name: "unknown route", method: "GET", path: "/etc/passwd" },
];
