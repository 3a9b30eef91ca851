// The client in a few lines (README "TypeScript client"); the contract test compiles and runs it
// against a live gateway: AGENTRY_GATEWAY_URL, AGENTRY_TOKEN, AGENTRY_NAMESPACE.
import { createClient, unwrap, type SandboxFleetInput } from "./index.ts";

const namespace = process.env.AGENTRY_NAMESPACE ?? "default";
const client = createClient({
  baseUrl: process.env.AGENTRY_GATEWAY_URL ?? "http://localhost:8080",
  token: process.env.AGENTRY_TOKEN,
});

// Defaulted fields (warmEmpty, maxWorkspacesPerSandbox, ...) may be left out of a request.
const fleet: SandboxFleetInput & { metadata: { name: string } } = {
  metadata: { name: "example-fleet" },
  spec: { template: { image: "busybox:1.36" }, minReplicas: 0, maxReplicas: 2 },
};
const created = unwrap(
  await client.POST("/v1/namespaces/{namespace}/sandboxfleets", {
    params: { path: { namespace } },
    body: fleet,
  }),
);
console.log(`created ${created.metadata.namespace}/${created.metadata.name}`);

const list = unwrap(
  await client.GET("/v1/namespaces/{namespace}/sandboxfleets", {
    params: { path: { namespace }, query: { limit: 10 } },
  }),
);
console.log(`fleets: ${list.items.map((f) => `${f.metadata.name} (max ${f.spec.maxReplicas})`).join(", ")}`);

const patched = unwrap(
  await client.PATCH("/v1/namespaces/{namespace}/sandboxfleets/{name}", {
    params: { path: { namespace, name: "example-fleet" } },
    body: { spec: { maxReplicas: 3 } },
  }),
);
console.log(`maxReplicas now ${patched.spec.maxReplicas}`);

unwrap(
  await client.DELETE("/v1/namespaces/{namespace}/sandboxfleets/{name}", {
    params: { path: { namespace, name: "example-fleet" } },
  }),
);
console.log("deleted");
