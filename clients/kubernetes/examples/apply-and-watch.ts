// A small kubernetes-fluent-client program on the typed agentry kinds: apply an
// AgentRuntime (server-side apply), then watch it until the operator reports it Ready.
//   node clients/kubernetes/examples/apply-and-watch.ts <namespace> <name>
// Uses the current kubeconfig context ($KUBECONFIG or ~/.kube/config).
import { K8s } from "kubernetes-fluent-client";
import { AgentRuntime, AgentRuntimeTypes } from "../src/index.ts";

const [namespace = "default", name = "hello-agent"] = process.argv.slice(2);

await K8s(AgentRuntime).Apply(
  {
    metadata: { name, namespace },
    spec: { image: "ghcr.io/agentry-dev/agent:0.1.0", model: { provider: "echo", model: "echo-1" } },
  },
  { force: true },
);
console.log(`applied agentruntime ${namespace}/${name}`);

const ready = Promise.withResolvers<AgentRuntime>();
const watcher = K8s(AgentRuntime)
  .InNamespace(namespace)
  .Watch((agent) => {
    if (agent.metadata?.name === name && agent.status?.phase === AgentRuntimeTypes.Phase.Ready)
      ready.resolve(agent);
  });
await watcher.start();
const timeout = setTimeout(() => ready.reject(new Error("not Ready within 120s")), 120_000);
try {
  const agent = await ready.promise;
  console.log(`agentruntime ${namespace}/${name} is ${agent.status?.phase} at ${agent.status?.endpoint}`);
} finally {
  clearTimeout(timeout);
  watcher.close();
}
