// Hostile custom resources sent to the apiserver (CRD schema + CEL + admission webhook):
// wrong types, huge bodies, deep nesting, unicode names, injection attempts, invalid cron,
// references across namespaces. Every one must be refused with a 4xx. These complement
// test/api/invalid-corpus.ts (one broken field per kind, message checked) and do not
// repeat it.
type Obj = Record<string, unknown>;
type Kind = "AgentRuntime" | "Pipeline" | "SandboxFleet" | "Workspace";

export interface HostileCr {
  name: string;
  kind: Kind;
  /** The request body: an object (serialised as JSON) or raw text sent as it is. */
  body: (namespace: string) => Obj | string;
}

const base: Record<Kind, Obj> = {
  AgentRuntime: { image: "registry.example/agent:1" },
  Pipeline: { steps: [{ name: "a", image: "registry.example/tool:1" }] },
  SandboxFleet: { template: { image: "registry.example/sandbox:1" } },
  Workspace: { fleetRef: { name: "fleet" } },
};

const doc = (kind: Kind, ns: string, spec: unknown, metadata: Obj = {}): Obj => ({
  apiVersion: "agentry.dev/v1alpha1",
  kind,
  metadata: { name: "hostile", namespace: ns, ...metadata },
  spec,
});

/** One case whose spec is the kind's valid base with `patch` merged in. */
const spec = (kind: Kind, name: string, patch: Obj): HostileCr => ({
  name,
  kind,
  body: (ns) => doc(kind, ns, { ...base[kind], ...patch }),
});
/** One case whose metadata is changed. */
const meta = (kind: Kind, name: string, metadata: Obj): HostileCr => ({
  name,
  kind,
  body: (ns) => doc(kind, ns, base[kind], metadata),
});
const raw = (kind: Kind, name: string, text: (ns: string) => string): HostileCr => ({
  name,
  kind,
  body: text,
});
const step = (patch: Obj): Obj => ({ steps: [{ name: "a", image: "registry.example/tool:1", ...patch }] });

const nested = (depth: number): unknown => {
  let v: unknown = "x";
  for (let i = 0; i < depth; i++) v = { n: v };
  return v;
};

const wrongTypes: HostileCr[] = [
  { name: "spec is a string", kind: "AgentRuntime", body: (ns) => doc("AgentRuntime", ns, "image") },
  { name: "spec is an array", kind: "Pipeline", body: (ns) => doc("Pipeline", ns, [base.Pipeline]) },
  { name: "spec is a number", kind: "SandboxFleet", body: (ns) => doc("SandboxFleet", ns, 7) },
  { name: "spec is true", kind: "Workspace", body: (ns) => doc("Workspace", ns, true) },
  meta("AgentRuntime", "name is a number", { name: 42 }),
  meta("Workspace", "labels is a list", { labels: ["a", "b"] }),
  meta("Pipeline", "label value is a number", { labels: { a: 1 } }),
  meta("SandboxFleet", "annotations is a string", { annotations: "a=b" }),
  spec("AgentRuntime", "image is a number", { image: 5 }),
  spec("AgentRuntime", "image is a list", { image: ["a:1"] }),
  spec("AgentRuntime", "port is a float", { port: 8080.5 }),
  spec("AgentRuntime", "port is a boolean", { port: true }),
  spec("AgentRuntime", "env is an object", { env: { A: "b" } }),
  spec("AgentRuntime", "env item is a string", { env: ["A=b"] }),
  spec("AgentRuntime", "command is a string", { command: "sleep 1" }),
  spec("AgentRuntime", "args hold a number", { args: ["a", 1] }),
  spec("AgentRuntime", "suspended is yes", { suspended: "yes" }),
  spec("AgentRuntime", "resources limit is an object", { resources: { limits: { cpu: { m: 5 } } } }),
  spec("AgentRuntime", "networkPolicy.enabled is text", { networkPolicy: { enabled: "true" } }),
  spec("AgentRuntime", "model is a string", { model: "gpt" }),
  spec("Pipeline", "steps is an object", { steps: { a: { image: "x:1" } } }),
  spec("Pipeline", "step is a string", { steps: ["registry.example/tool:1"] }),
  spec("Pipeline", "backoffLimit is text", { backoffLimit: "3" }),
  spec("Pipeline", "schedule is a number", { schedule: 5 }),
  spec("Pipeline", "step input is an object", step({ input: { prompt: "x" } })),
  spec("SandboxFleet", "minReplicas is text", { minReplicas: "1" }),
  spec("SandboxFleet", "maxReplicas is a float", { maxReplicas: 2.5 }),
  spec("SandboxFleet", "template is a string", { template: "registry.example/sandbox:1" }),
  spec("SandboxFleet", "thresholds is a number", { pressureThresholds: 0.5 }),
  spec("Workspace", "fleetRef is a string", { fleetRef: "fleet" }),
  spec("Workspace", "ownerId is a number", { ownerId: 7 }),
  spec("Workspace", "suspended is null", { suspended: null }),
];

const huge: HostileCr[] = [
  spec("AgentRuntime", "image of 100 kB", { image: `registry.example/${"a".repeat(100_000)}:1` }),
  spec("AgentRuntime", "300 env vars", {
    env: Array.from({ length: 300 }, (_, i) => ({ name: `V${i}`, value: "x" })),
  }),
  spec("AgentRuntime", "env value of 40 kB", { env: [{ name: "A", value: "x".repeat(40_000) }] }),
  spec("AgentRuntime", "300 args", { args: Array.from({ length: 300 }, () => "x") }),
  spec("Pipeline", "step input of 70 kB", step({ input: "x".repeat(70_000) })),
  spec("Pipeline", "60 steps", {
    steps: Array.from({ length: 60 }, (_, i) => ({ name: `s${i}`, image: "registry.example/tool:1" })),
  }),
  meta("Workspace", "annotations over 256 kB", { annotations: { big: "x".repeat(300_000) } }),
  meta("Workspace", "label value of 100 characters", { labels: { a: "x".repeat(100) } }),
  raw("Workspace", "body over 3 MB", (ns) =>
    JSON.stringify(doc("Workspace", ns, base.Workspace, { annotations: { big: "x".repeat(3_300_000) } })),
  ),
];

const deep: HostileCr[] = [
  spec("AgentRuntime", "unknown field nested 200 deep", { extra: nested(200) }),
  spec("SandboxFleet", "template field nested 50 deep", {
    template: { image: "registry.example/sandbox:1", x: nested(50) },
  }),
  raw("Workspace", "JSON nested 20,000 deep", (ns) => {
    const d = 20_000;
    return `{"apiVersion":"agentry.dev/v1alpha1","kind":"Workspace","metadata":{"name":"hostile","namespace":"${ns}"},"spec":{"fleetRef":{"name":"f"},"x":${"[".repeat(d)}${"]".repeat(d)}}}`;
  }),
  meta("Pipeline", "labels nested", { labels: { a: { b: { c: "d" } } } }),
];

const unicodeNames: HostileCr[] = [
  ["umlaut", "ägent"],
  ["cyrillic", "агент"],
  ["emoji", "agent-🤖"],
  ["right-to-left override", "agent\u202etxt"],
  ["zero-width space", "a\u200bb"],
  ["full-width letters", "ａｇｅｎｔ"],
  ["combining accent", "e\u0301"],
  ["NUL", "a\u0000b"],
  ["upper case", "Agent"],
  ["dot-dot", ".."],
  ["slash", "a/b"],
  ["leading dash", "-agent"],
].map(([why, name]) => meta("AgentRuntime", `name with ${why}`, { name }));

const unicodeFields: HostileCr[] = [
  spec("Pipeline", "step name with unicode", step({ name: "schritt-ü" })),
  spec("AgentRuntime", "env name with unicode", { env: [{ name: "ÄPI_KEY", value: "x" }] }),
  spec("Workspace", "fleet name with unicode", { fleetRef: { name: "flöte" } }),
  meta("Workspace", "label key with unicode", { labels: { tëam: "a" } }),
  spec("AgentRuntime", "serviceAccountName with unicode", { serviceAccountName: "dienst-ß" }),
];

const injection: HostileCr[] = [
  spec("AgentRuntime", "image with a shell command", { image: "alpine;rm -rf /" }),
  spec("AgentRuntime", "image with $( )", { image: "registry.example/a:$(id)" }),
  spec("AgentRuntime", "image with backticks", { image: "registry.example/`id`:1" }),
  spec("AgentRuntime", "image with a pipe", { image: "registry.example/a:1|sh" }),
  spec("AgentRuntime", "image with a newline", { image: "registry.example/a:1\nid" }),
  spec("Pipeline", "step image with && ", step({ image: "registry.example/a:1&&id" })),
  spec("Pipeline", "step name with ;", step({ name: "a;id" })),
  spec("Pipeline", "step name with $( )", step({ name: "$(id)" })),
  spec("Pipeline", "env name with ;", step({ env: [{ name: "A;id", value: "x" }] })),
  spec("Pipeline", "schedule with ;", { schedule: "* * * * *;id" }),
  spec("Pipeline", "schedule with $( )", { schedule: "$(id) * * * *" }),
  spec("Pipeline", "timeZone with backticks", { schedule: "0 1 * * *", timeZone: "`id`" }),
  spec("Pipeline", "agentRef with ;", {
    steps: [{ name: "a", agentRef: { name: "agent;id" } }],
  }),
  spec("AgentRuntime", "serviceAccountName with &&", { serviceAccountName: "default&&id" }),
  spec("AgentRuntime", "runtimeClassName with |", { runtimeClassName: "gvisor|id" }),
  spec("AgentRuntime", "imagePullPolicy with ;", { imagePullPolicy: "Always;id" }),
  meta("Workspace", "label value with $( )", { labels: { a: "$(id)" } }),
  spec("Workspace", "git url with a shell command", {
    source: { git: { url: "https://example.com/r.git;id" } },
  }),
  spec("Workspace", "git url with ext:: transport", { source: { git: { url: "ext::sh -c id" } } }),
  spec("AgentRuntime", "model endpoint with a space", {
    model: { provider: "echo", model: "m", endpoint: "http://x y" },
  }),
];

const cron: HostileCr[] = [
  "61 * * * *",
  "* 25 * * *",
  "* * 32 * *",
  "* * * 13 *",
  "* * * * 8",
  "*/0 * * * *",
  "a b c d e",
  "* * * * * *",
  "@reboot",
  "@every",
  "1-100 * * * *",
  "* * * *",
].map((schedule) => spec("Pipeline", `cron ${JSON.stringify(schedule)}`, { schedule }));

const timeZones: HostileCr[] = ["Mars/Olympus_Mons", "../../etc/passwd", "UTC+25"].map((timeZone) =>
  spec("Pipeline", `timeZone ${timeZone}`, { schedule: "0 1 * * *", timeZone }),
);

const crossNamespace: HostileCr[] = [
  spec("AgentRuntime", "workspaceRef with a namespace", {
    workspaceRef: { name: "w", namespace: "kube-system" },
  }),
  spec("AgentRuntime", "workspaceRef name ns/name", { workspaceRef: { name: "kube-system/w" } }),
  spec("AgentRuntime", "credentials Secret in another namespace", {
    model: { provider: "openai", model: "m", credentialsSecretRef: { name: "k", namespace: "kube-system" } },
  }),
  spec("AgentRuntime", "credentials Secret name with a slash", {
    model: { provider: "openai", model: "m", credentialsSecretRef: { name: "kube-system/k" } },
  }),
  spec("AgentRuntime", "env secretKeyRef with a namespace", {
    env: [{ name: "A", valueFrom: { secretKeyRef: { name: "s", key: "k", namespace: "kube-system" } } }],
  }),
  spec("AgentRuntime", "envFrom secretRef in another namespace", {
    envFrom: [{ secretRef: { name: "s", namespace: "kube-system" } }],
  }),
  spec("AgentRuntime", "envFrom secretRef ../", { envFrom: [{ secretRef: { name: "../s" } }] }),
  spec("Pipeline", "agentRef with a namespace", {
    steps: [{ name: "a", agentRef: { name: "x", namespace: "kube-system" } }],
  }),
  spec("Workspace", "fleetRef with a namespace", { fleetRef: { name: "fleet", namespace: "kube-system" } }),
  spec("Workspace", "fleetRef name ns/name", { fleetRef: { name: "kube-system/fleet" } }),
  {
    name: "metadata.namespace differs from the URL",
    kind: "Workspace",
    body: () => doc("Workspace", "kube-system", base.Workspace),
  },
  spec("AgentRuntime", "storage bootstrap ConfigMap ../", {
    storage: { size: "1Gi", bootstrapConfigMap: "../cm" },
  }),
];

const malformed: HostileCr[] = [
  raw("Workspace", "not JSON", () => "{not json"),
  raw("Workspace", "truncated JSON", (ns) =>
    JSON.stringify(doc("Workspace", ns, base.Workspace)).slice(0, 60),
  ),
  raw("Workspace", "JSON null", () => "null"),
  raw("Workspace", "JSON array", () => "[]"),
  raw("Workspace", "JSON string", () => '"Workspace"'),
  raw("Workspace", "empty body", () => ""),
  raw(
    "AgentRuntime",
    "duplicate keys",
    (ns) =>
      `{"apiVersion":"agentry.dev/v1alpha1","kind":"AgentRuntime","metadata":{"name":"hostile","namespace":"${ns}"},"spec":{"image":"registry.example/a:1","image":"registry.example/b:1"}}`,
  ),
  raw("AgentRuntime", "wrong kind for the URL", (ns) => JSON.stringify(doc("Workspace", ns, base.Workspace))),
  {
    name: "wrong apiVersion",
    kind: "AgentRuntime",
    body: (ns) => ({ ...doc("AgentRuntime", ns, base.AgentRuntime), apiVersion: "agentry.dev/v9" }),
  },
  meta("AgentRuntime", "missing name", { name: undefined }),
  meta("AgentRuntime", "generateName only, invalid", { name: undefined, generateName: "Bad_" }),
  meta("Pipeline", "finalizer with an invalid name", { finalizers: ["not a finalizer"] }),
  meta("Pipeline", "ownerReference without uid", {
    ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "x" }],
  }),
];

export const hostileCrs: HostileCr[] = [
  ...wrongTypes,
  ...huge,
  ...deep,
  ...unicodeNames,
  ...unicodeFields,
  ...injection,
  ...cron,
  ...timeZones,
  ...crossNamespace,
  ...malformed,
];
