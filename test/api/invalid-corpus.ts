// Invalid agentry objects, each with the message the apiserver must answer (it must name
// the offending field). Built from one valid base per kind, changed in one place.
type Obj = Record<string, unknown>;

export interface InvalidCase {
  name: string;
  kind: "AgentRuntime" | "Pipeline" | "SandboxFleet" | "Workspace";
  objectName?: string;
  spec: Obj;
  expect: RegExp;
}

export const validSpecs: Record<InvalidCase["kind"], Obj> = {
  AgentRuntime: { image: "registry.example/agent:1" },
  Pipeline: { steps: [{ name: "a", image: "registry.example/tool:1" }] },
  SandboxFleet: { template: { image: "registry.example/sandbox:1" } },
  Workspace: { fleetRef: { name: "fleet" } },
};

const ar = (patch: Obj): Obj => ({ ...validSpecs.AgentRuntime, ...patch });
const pl = (patch: Obj): Obj => ({ ...validSpecs.Pipeline, ...patch });
const sbf = (patch: Obj): Obj => ({ ...validSpecs.SandboxFleet, ...patch });
const ws = (patch: Obj): Obj => ({ ...validSpecs.Workspace, ...patch });
const step = (patch: Obj): Obj => ({ name: "a", image: "registry.example/tool:1", ...patch });
const tmpl = (patch: Obj): Obj => ({ template: { image: "registry.example/sandbox:1", ...patch } });

export const invalidCases: InvalidCase[] = [
  // AgentRuntime
  { kind: "AgentRuntime", name: "missing image", spec: {}, expect: /spec\.image: Required value/ },
  {
    kind: "AgentRuntime",
    name: "empty image",
    spec: ar({ image: "" }),
    expect: /spec\.image: Invalid value/,
  },
  {
    kind: "AgentRuntime",
    name: "image with spaces",
    spec: ar({ image: "a b" }),
    expect: /spec\.image: Invalid value/,
  },
  { kind: "AgentRuntime", name: "port 0", spec: ar({ port: 0 }), expect: /spec\.port: Invalid value: 0/ },
  {
    kind: "AgentRuntime",
    name: "port too big",
    spec: ar({ port: 70000 }),
    expect: /spec\.port: Invalid value: 70000/,
  },
  {
    kind: "AgentRuntime",
    name: "port as text",
    spec: ar({ port: "http" }),
    expect: /spec\.port: Invalid value: "string"/,
  },
  {
    kind: "AgentRuntime",
    name: "unknown pull policy",
    spec: ar({ imagePullPolicy: "Sometimes" }),
    expect: /spec\.imagePullPolicy: Unsupported value: "Sometimes"/,
  },
  {
    kind: "AgentRuntime",
    name: "env without name",
    spec: ar({ env: [{ value: "x" }] }),
    expect: /spec\.env\[0\]\.name: Required value/,
  },
  {
    kind: "AgentRuntime",
    name: "env value and valueFrom",
    spec: ar({ env: [{ name: "A", value: "x", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }] }),
    expect: /spec\.env\[0\]: Invalid value: set either value or valueFrom, not both/,
  },
  {
    kind: "AgentRuntime",
    name: "env valueFrom with two sources",
    spec: ar({
      env: [
        {
          name: "A",
          valueFrom: { secretKeyRef: { name: "s", key: "k" }, configMapKeyRef: { name: "c", key: "k" } },
        },
      ],
    }),
    expect: /spec\.env\[0\]: Invalid value: valueFrom needs exactly one of secretKeyRef or configMapKeyRef/,
  },
  {
    kind: "AgentRuntime",
    name: "env name with spaces",
    spec: ar({ env: [{ name: "A B", value: "x" }] }),
    expect: /spec\.env\[0\]\.name: Invalid value/,
  },
  {
    kind: "AgentRuntime",
    name: "envFrom with no source",
    spec: ar({ envFrom: [{ prefix: "X_" }] }),
    expect: /spec\.envFrom\[0\]: Invalid value: set exactly one of secretRef or configMapRef/,
  },
  {
    kind: "AgentRuntime",
    name: "unknown model provider",
    spec: ar({ model: { provider: "skynet", model: "t-800" } }),
    expect: /spec\.model\.provider: Unsupported value: "skynet"/,
  },
  {
    kind: "AgentRuntime",
    name: "model without name",
    spec: ar({ model: { provider: "openai" } }),
    expect: /spec\.model\.model: Required value/,
  },
  {
    kind: "AgentRuntime",
    name: "model endpoint not http",
    spec: ar({ model: { provider: "openai", model: "m", endpoint: "ftp://models" } }),
    expect: /spec\.model\.endpoint: Invalid value/,
  },
  {
    kind: "AgentRuntime",
    name: "bad credentials secret name",
    spec: ar({ model: { provider: "openai", model: "m", credentialsSecretRef: { name: "Bad_Name" } } }),
    expect: /spec\.model\.credentialsSecretRef\.name: Invalid value/,
  },
  {
    kind: "AgentRuntime",
    name: "egress cidr not a cidr",
    spec: ar({ networkPolicy: { enabled: true, egress: [{ cidr: "not-a-cidr" }] } }),
    expect: /spec\.networkPolicy\.egress\[0\]\.cidr: Invalid value/,
  },
  {
    kind: "AgentRuntime",
    name: "egress port 0",
    spec: ar({ networkPolicy: { enabled: true, egress: [{ cidr: "10.0.0.0/8", ports: [0] }] } }),
    expect: /spec\.networkPolicy\.egress\[0\]\.ports\[0\]: Invalid value: 0/,
  },
  {
    kind: "AgentRuntime",
    name: "storage without size",
    spec: ar({ storage: { mountPath: "/data" } }),
    expect: /spec\.storage\.size: Required value/,
  },
  {
    kind: "AgentRuntime",
    name: "relative storage mount path",
    spec: ar({ storage: { size: "1Gi", mountPath: "data" } }),
    expect: /spec\.storage\.mountPath: Invalid value/,
  },
  {
    kind: "AgentRuntime",
    name: "suspended as text",
    spec: ar({ suspended: "yes" }),
    expect: /spec\.suspended: Invalid value: "string"/,
  },
  {
    kind: "AgentRuntime",
    name: "workspaceRef without name",
    spec: ar({ workspaceRef: {} }),
    expect: /spec\.workspaceRef\.name: Required value/,
  },
  {
    kind: "AgentRuntime",
    name: "name longer than 63",
    objectName: "a".repeat(64),
    spec: ar({}),
    expect: /metadata\.name must be at most 63 characters/,
  },
  {
    kind: "AgentRuntime",
    name: "name with a dot",
    objectName: "agent.one",
    spec: ar({}),
    expect: /metadata\.name must be a DNS label/,
  },
  {
    kind: "AgentRuntime",
    name: "unknown field",
    spec: ar({ imagee: "x" }),
    expect: /unknown field "spec\.imagee"/,
  },
  // Pipeline
  { kind: "Pipeline", name: "missing steps", spec: {}, expect: /spec\.steps: Required value/ },
  {
    kind: "Pipeline",
    name: "empty steps",
    spec: pl({ steps: [] }),
    expect: /spec\.steps: Invalid value: 0: spec\.steps in body should have at least 1 items/,
  },
  {
    kind: "Pipeline",
    name: "step with image and agentRef",
    spec: pl({ steps: [step({ agentRef: { name: "agent" } })] }),
    expect: /spec\.steps\[0\]: Invalid value: each step needs exactly one of image/,
  },
  {
    kind: "Pipeline",
    name: "step with neither image nor agentRef",
    spec: pl({ steps: [{ name: "a" }] }),
    expect: /spec\.steps\[0\]: Invalid value: each step needs exactly one of image/,
  },
  {
    kind: "Pipeline",
    name: "duplicate step names",
    spec: pl({ steps: [step({}), step({})] }),
    expect: /spec\.steps\[1\]: Duplicate value/,
  },
  {
    kind: "Pipeline",
    name: "step name with spaces",
    spec: pl({ steps: [step({ name: "Bad Name" })] }),
    expect: /spec\.steps\[0\]\.name: Invalid value/,
  },
  {
    kind: "Pipeline",
    name: "schedule in words",
    spec: pl({ schedule: "every day" }),
    expect: /spec\.schedule: Invalid value: "every day"/,
  },
  {
    kind: "Pipeline",
    name: "schedule with 3 fields",
    spec: pl({ schedule: "* * *" }),
    expect: /spec\.schedule: Invalid value: "\* \* \*"/,
  },
  {
    kind: "Pipeline",
    name: "unknown concurrency policy",
    spec: pl({ concurrencyPolicy: "Sometimes" }),
    expect: /spec\.concurrencyPolicy: Unsupported value: "Sometimes"/,
  },
  {
    kind: "Pipeline",
    name: "negative backoffLimit",
    spec: pl({ backoffLimit: -1 }),
    expect: /spec\.backoffLimit: Invalid value: -1/,
  },
  {
    kind: "Pipeline",
    name: "zero activeDeadlineSeconds",
    spec: pl({ activeDeadlineSeconds: 0 }),
    expect: /spec\.activeDeadlineSeconds: Invalid value: 0/,
  },
  {
    kind: "Pipeline",
    name: "timeZone on a one-shot pipeline",
    spec: pl({ schedule: "@once", timeZone: "UTC" }),
    expect: /spec\.timeZone: Invalid value: timeZone only applies to a cron schedule/,
  },
  {
    kind: "Pipeline",
    name: "timeZone with shell characters",
    spec: pl({ schedule: "0 1 * * *", timeZone: "UTC; rm -rf /" }),
    expect: /spec\.timeZone: Invalid value/,
  },
  {
    kind: "Pipeline",
    name: "name longer than 52",
    objectName: "p".repeat(53),
    spec: pl({}),
    expect: /metadata\.name must be at most 52 characters \(CronJob names are limited to 52 characters\)/,
  },
  {
    kind: "Pipeline",
    name: "more than 50 steps",
    spec: pl({ steps: Array.from({ length: 51 }, (_, i) => step({ name: `s${i}` })) }),
    expect: /spec\.steps: Too many: 51: must have at most 50 items/,
  },
  {
    kind: "Pipeline",
    name: "step timeout 0",
    spec: pl({ steps: [step({ timeoutSeconds: 0 })] }),
    expect: /spec\.steps\[0\]\.timeoutSeconds: Invalid value: 0/,
  },
  // SandboxFleet
  { kind: "SandboxFleet", name: "missing template", spec: {}, expect: /spec\.template: Required value/ },
  {
    kind: "SandboxFleet",
    name: "min above max",
    spec: sbf({ minReplicas: 5, maxReplicas: 2 }),
    expect:
      /spec\.minReplicas: Invalid value: spec\.minReplicas must be less than or equal to spec\.maxReplicas/,
  },
  {
    kind: "SandboxFleet",
    name: "pinned replicas above max",
    spec: sbf({ replicas: 50, maxReplicas: 10 }),
    expect: /spec\.replicas: Invalid value: spec\.replicas must lie between/,
  },
  {
    kind: "SandboxFleet",
    name: "cpu threshold 0",
    spec: sbf({ pressure: { cpu: 0 } }),
    expect: /spec\.pressure\.cpu: Invalid value: 0/,
  },
  {
    kind: "SandboxFleet",
    name: "memory threshold above 1",
    spec: sbf({ pressure: { memory: 1.5 } }),
    expect: /spec\.pressure\.memory: Invalid value: 1\.5/,
  },
  {
    kind: "SandboxFleet",
    name: "unknown ownerless pool",
    spec: sbf({ ownerlessPool: "private" }),
    expect: /spec\.ownerlessPool: Unsupported value: "private"/,
  },
  {
    kind: "SandboxFleet",
    name: "sampling interval in words",
    spec: sbf({ samplingInterval: "1 second" }),
    expect: /spec\.samplingInterval: Invalid value: "1 second"/,
  },
  {
    kind: "SandboxFleet",
    name: "zero workspaces per sandbox",
    spec: sbf({ maxWorkspacesPerSandbox: 0 }),
    expect: /spec\.maxWorkspacesPerSandbox: Invalid value: 0/,
  },
  {
    kind: "SandboxFleet",
    name: "warmEmpty above max",
    spec: sbf({ warmEmpty: 20, maxReplicas: 10 }),
    expect: /spec\.warmEmpty: Invalid value: spec\.warmEmpty cannot exceed spec\.maxReplicas/,
  },
  {
    kind: "SandboxFleet",
    name: "negative minReplicas",
    spec: sbf({ minReplicas: -1 }),
    expect: /spec\.minReplicas: Invalid value: -1/,
  },
  {
    kind: "SandboxFleet",
    name: "template port 0",
    spec: tmpl({ port: 0 }),
    expect: /spec\.template\.port: Invalid value: 0/,
  },
  {
    kind: "SandboxFleet",
    name: "template without image",
    spec: { template: { port: 8080 } },
    expect: /spec\.template\.image: Required value/,
  },
  {
    kind: "SandboxFleet",
    name: "drainTimeout negative",
    spec: sbf({ drainTimeout: "-5m" }),
    expect: /spec\.drainTimeout: Invalid value: "-5m"/,
  },
  // Workspace
  { kind: "Workspace", name: "missing fleetRef", spec: {}, expect: /spec\.fleetRef: Required value/ },
  {
    kind: "Workspace",
    name: "empty fleet name",
    spec: ws({ fleetRef: { name: "" } }),
    expect: /spec\.fleetRef\.name: Invalid value/,
  },
  {
    kind: "Workspace",
    name: "owner with spaces",
    spec: ws({ ownerId: "bad owner" }),
    expect: /spec\.ownerId: Invalid value: "bad owner"/,
  },
  {
    kind: "Workspace",
    name: "git url with file scheme",
    spec: ws({ source: { git: { url: "file:///etc/passwd" } } }),
    expect: /spec\.source\.git\.url: Invalid value: "file:\/\/\/etc\/passwd"/,
  },
  {
    kind: "Workspace",
    name: "unknown source type",
    spec: ws({ source: { s3: { bucket: "b" } } }),
    expect: /unknown field "spec\.source\.s3"/,
  },
];
