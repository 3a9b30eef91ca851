// The trust controller, one key per namespace: keeps the trust ConfigMap (the public keys
// sandbox and agent pods trust) in every namespace with a SandboxFleet or an AgentRuntime,
// and the tokens Secret (tokens pods send: dispatchers to agents, agents to workspaces)
// wherever Pipelines or AgentRuntimes need one, re-signed every STORED_TOKEN_REFRESH_MS.
// A ConfigMap or Secret of those names that agentry did not make is never changed: the
// objects that need it get a Warning event saying so. Both go when nothing needs them.
import { ANNOTATION_SPEC_HASH, ChildWriter } from "../../lib/kube/children.ts";
import {
  isConflict,
  isNotFound,
  type KubeApi,
  type KubeClient,
  type KubeObject,
} from "../../lib/kube/client.ts";
import type { ReconcileResult } from "../../lib/kube/controller.ts";
import type { Watches, WatchingReconciler } from "../../lib/kube/watches.ts";
import type { Recorder } from "../../lib/kube/events.ts";
import type { SharedInformer } from "../../lib/kube/informer.ts";
import type { TypedInformer } from "../../lib/kube/typed.ts";
import type { Metrics } from "../../lib/kube/metrics.ts";
import { stableStringify } from "../../lib/kube/names.ts";
import type { Logger } from "../../lib/log.ts";
import type { PublicKey } from "../../lib/keyring.ts";
import type { OperatorKeys } from "./keys.ts";
import {
  LABEL_TRUST,
  STORED_TOKEN_REFRESH_MS,
  STORED_TOKEN_TTL_SECONDS,
  TOKENS_SECRET,
  TRUST_CONFIGMAP,
  desiredTokensSecret,
  desiredTrustBundle,
  wantedTokens,
} from "./trust.desired.ts";
import { AgentTally } from "./trust.tally.ts";

export interface TrustInformers {
  fleets: TypedInformer<"SandboxFleet">;
  agents: TypedInformer<"AgentRuntime">;
  pipelines: TypedInformer<"Pipeline">;
  /** ConfigMaps labelled as trust bundles (TRUST_SELECTOR). */
  trustConfigMaps: SharedInformer<KubeObject>;
}

export interface TrustControllerDeps {
  client: KubeApi & Pick<KubeClient, "replace">;
  informers: TrustInformers;
  keys: Pick<OperatorKeys, "bundle" | "freshToken" | "signingKid">;
  recorder: Recorder;
  metrics: Metrics;
  log: Logger;
  now?: () => number;
}

/** At most this many objects of a namespace get the Warning event of a trust problem. */
export const TRUST_EVENT_OBJECTS = 20;

/** When the bundle is empty (no key could be read yet), look again this soon. */
const NO_KEYS_RETRY_MS = 1000;

const isOurs = (o: KubeObject | undefined, kind: "bundle" | "tokens") =>
  o?.metadata.labels?.[LABEL_TRUST] === kind &&
  o.metadata.labels["app.kubernetes.io/managed-by"] === "agentry";

/** A namespace's desired trust ConfigMap, for the keys of `fingerprint`. */
interface Bundle {
  fingerprint: string;
  desired: KubeObject;
  /** The cached ConfigMap last found to hold it. */
  matches?: KubeObject;
}

export class TrustReconciler implements WatchingReconciler {
  readonly name = "trust";
  private readonly deps: TrustControllerDeps;
  private readonly writer: ChildWriter;
  private readonly now: () => number;
  /** Per namespace: what the tokens Secret holds, and when it must be signed again. */
  private readonly written = new Map<string, { signature: string; refreshAt: number }>();
  /** Per namespace: the problems last reported (each is reported once, not at every retry). */
  private readonly reported = new Map<string, string>();
  /**
   * Per namespace where no token is wanted: when the tokens Secret was last found absent (or
   * removed). It is not read again before STORED_TOKEN_REFRESH_MS, so a namespace of
   * AgentRuntimes without workspaces costs no read per change (the operator writes that
   * Secret itself, and forgets this when it does).
   */
  private readonly noTokens = new Map<string, number>();
  /** Per namespace needing the bundle: the desired ConfigMap for the current keys. */
  private readonly bundles = new Map<string, Bundle>();
  /** The namespaces' AgentRuntimes as trust sees them (counts and Workspaces), kept from the cache's events. */
  private readonly agents: AgentTally;

  constructor(deps: TrustControllerDeps) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    this.writer = new ChildWriter(deps.client, deps.metrics, this.name, this.now);
    this.agents = new AgentTally(deps.informers.agents);
  }

  /** Each namespace with something to trust or to sign for; every such namespace at a resync (after a key change, too). */
  readonly watches: Watches = {
    register: (controller) => {
      const { informers } = this.deps;
      const byNamespace = (o: KubeObject) => {
        if (o.metadata.namespace) controller.enqueue(o.metadata.namespace);
      };
      for (const inf of [informers.fleets, informers.pipelines, informers.trustConfigMaps]) {
        inf.on("add", byNamespace);
        inf.on("delete", byNamespace);
      }
      informers.trustConfigMaps.on("update", byNamespace);
      informers.pipelines.on("update", (o, old) => {
        if (!old || old.metadata.generation !== o.metadata.generation) byNamespace(o);
      });
      // An AgentRuntime only when it comes, goes, or changes its Workspace: not at every spec change.
      this.agents.onChange((namespace) => controller.enqueue(namespace));
    },
    resync: (controller) => {
      const { informers } = this.deps;
      const namespaces = new Set<string>();
      for (const inf of [informers.fleets, informers.agents, informers.pipelines, informers.trustConfigMaps])
        for (const o of inf.list()) if (o.metadata.namespace) namespaces.add(o.metadata.namespace);
      for (const ns of namespaces) controller.enqueue(ns);
    },
  };

  async reconcile(namespace: string): Promise<ReconcileResult | void> {
    const { informers } = this.deps;
    const fleets = informers.fleets.list(namespace);
    const agents = this.agents.count(namespace);
    const pipelines = informers.pipelines.list(namespace);
    const live = (o: { metadata: { deletionTimestamp?: unknown } }) => !o.metadata.deletionTimestamp;
    const problems: string[] = [];

    // 1. The trust bundle, while sandbox or agent pods may run here.
    const needsBundle = fleets.some(live) || agents.live > 0;
    const keys = this.deps.keys.bundle();
    const observed = informers.trustConfigMaps.get(namespace, TRUST_CONFIGMAP);
    if (needsBundle && keys.length === 0) return { requeueAfterMs: NO_KEYS_RETRY_MS };
    if (needsBundle) {
      const bundle = this.bundleOf(namespace, keys);
      // The cached ConfigMap (a version is never changed in the cache) was found right before.
      if (!observed || bundle.matches !== observed) {
        if (observed && this.sameBundle(bundle.desired, observed)) bundle.matches = observed;
        else {
          const problem = await this.ensureBundle(namespace, bundle.desired, observed);
          if (problem) problems.push(problem);
        }
      }
    } else {
      this.bundles.delete(namespace);
      if (observed && isOurs(observed, "bundle")) await this.writer.remove(observed);
    }

    // 2. The tokens pods send.
    const wanted = wantedTokens(
      namespace,
      pipelines.filter(live),
      (agent) => this.agents.liveAgent(namespace, agent),
      this.agents.workspaces(namespace),
    );
    let requeueAfterMs: number | undefined;
    if (wanted.length === 0) {
      const checked = this.noTokens.get(namespace);
      if (checked === undefined || this.now() - checked >= STORED_TOKEN_REFRESH_MS) {
        await this.removeTokens(namespace);
        this.noTokens.set(namespace, this.now());
      }
      this.written.delete(namespace);
      // Nothing left here to trust or sign for: nothing to remember either.
      if (!fleets.length && !agents.agents && !pipelines.length) this.noTokens.delete(namespace);
    } else {
      this.noTokens.delete(namespace);
      const signature = stableStringify({ wanted, kid: this.deps.keys.signingKid ?? "" });
      const last = this.written.get(namespace);
      const now = this.now();
      if (!last || last.signature !== signature || now >= last.refreshAt) {
        const data: Record<string, string> = {};
        for (const w of wanted)
          data[w.key] = await this.deps.keys.freshToken(w.aud, w.scope, STORED_TOKEN_TTL_SECONDS);
        const problem = await this.writeTokens(namespace, data);
        if (problem) {
          problems.push(problem);
          this.written.delete(namespace);
        } else this.written.set(namespace, { signature, refreshAt: now + STORED_TOKEN_REFRESH_MS });
      }
      const next = this.written.get(namespace);
      if (next) requeueAfterMs = Math.max(1000, next.refreshAt - this.now());
    }

    if (problems.length) {
      this.report(namespace, problems, () => [...fleets, ...pipelines, ...informers.agents.list(namespace)]);
      throw new Error(problems.join("; "));
    }
    this.reported.delete(namespace);
    return requeueAfterMs !== undefined ? { requeueAfterMs } : undefined;
  }

  /**
   * Creates or updates the trust ConfigMap, which the cache says does not hold the desired
   * bundle (sameBundle); a problem when one of that name is not agentry's.
   */
  private async ensureBundle(
    namespace: string,
    desired: KubeObject,
    observed: KubeObject | undefined,
  ): Promise<string | undefined> {
    if (observed && isOurs(observed, "bundle")) {
      await this.replaceBundle(desired, observed);
      return undefined;
    }
    // Not in the cache: create it; an existing one is checked before anything is changed.
    try {
      await this.writer.write("ConfigMap", "create", () => this.deps.client.create(desired));
      return undefined;
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    const current = await this.deps.client.get<KubeObject>("v1", "ConfigMap", namespace, TRUST_CONFIGMAP);
    if (!isOurs(current, "bundle"))
      return `ConfigMap ${namespace}/${TRUST_CONFIGMAP} exists and was not made by agentry: sandbox and agent pods here would trust whatever keys it holds, so it is left alone and their calls fail; delete it and agentry makes its own`;
    await this.replaceBundle(desired, current);
    return undefined;
  }

  /** Whether agentry's ConfigMap holds the desired bundle (the data is compared too: an edit of the keys keeps the annotation). */
  private sameBundle(desired: KubeObject, observed: KubeObject): boolean {
    return (
      isOurs(observed, "bundle") &&
      observed.metadata.annotations?.[ANNOTATION_SPEC_HASH] ===
        desired.metadata.annotations?.[ANNOTATION_SPEC_HASH] &&
      stableStringify(observed["data"] ?? {}) === stableStringify(desired["data"])
    );
  }

  /**
   * The desired trust ConfigMap of a namespace, made again only when the keys change (each
   * pass of a namespace would otherwise serialise and hash the same keys again).
   */
  private bundleOf(namespace: string, keys: PublicKey[]): Bundle {
    const fingerprint = keys.map((k) => `${k.kid}\n${k.pem}`).join("\n");
    const known = this.bundles.get(namespace);
    if (known?.fingerprint === fingerprint) return known;
    const bundle: Bundle = { fingerprint, desired: desiredTrustBundle(namespace, keys) };
    this.bundles.set(namespace, bundle);
    return bundle;
  }

  /**
   * Makes the ConfigMap hold exactly the desired keys: a merge patch that also removes any
   * key (and any binaryData) someone else added, which a server-side apply would keep; at
   * the version read, so a concurrent change is a conflict and is retried.
   */
  private async replaceBundle(desired: KubeObject, current: KubeObject): Promise<void> {
    const data = (desired["data"] ?? {}) as Record<string, string>;
    const extra = Object.keys((current["data"] ?? {}) as Record<string, string>).filter((k) => !(k in data));
    const patch = {
      metadata: {
        resourceVersion: current.metadata.resourceVersion,
        labels: desired.metadata.labels,
        annotations: desired.metadata.annotations,
      },
      data: { ...data, ...Object.fromEntries(extra.map((k) => [k, null])) },
      binaryData: null,
    };
    await this.writer.write("ConfigMap", "patch", () => this.deps.client.mergePatch(current, patch));
  }

  /** Writes the tokens Secret (its name only: the operator reads no other Secret). */
  private async writeTokens(namespace: string, data: Record<string, string>): Promise<string | undefined> {
    const desired = desiredTokensSecret(namespace, data);
    const current = await this.readTokens(namespace);
    if (!current) {
      try {
        await this.writer.write("Secret", "create", () => this.deps.client.create(desired));
        return undefined;
      } catch (err) {
        if (!isConflict(err)) throw err;
        return this.writeTokens(namespace, data);
      }
    }
    if (!isOurs(current, "tokens"))
      return `Secret ${namespace}/${TOKENS_SECRET} exists and was not made by agentry, so agentry does not write the tokens Pipeline runs and agents with a workspace need there; delete it and agentry makes its own`;
    desired.metadata.resourceVersion = current.metadata.resourceVersion;
    await this.writer.write("Secret", "update", () => this.deps.client.replace(desired));
    return undefined;
  }

  private async removeTokens(namespace: string): Promise<void> {
    const current = await this.readTokens(namespace);
    if (current && isOurs(current, "tokens")) await this.writer.remove(current);
  }

  private async readTokens(namespace: string): Promise<KubeObject | undefined> {
    try {
      return await this.deps.client.get<KubeObject>("v1", "Secret", namespace, TOKENS_SECRET);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Says a namespace's problems once each: in the log, and as a Warning event on the first
   * TRUST_EVENT_OBJECTS of its objects (fleets and Pipelines first), not on every one of
   * thousands of AgentRuntimes.
   */
  private report(namespace: string, problems: string[], objectsOf: () => KubeObject[]): void {
    const text = problems.join("; ");
    if (this.reported.get(namespace) === text) return;
    this.reported.set(namespace, text);
    // Listed only when said: not at every retry of a problem already reported.
    const objects = objectsOf();
    this.deps.log.warn("data-plane trust cannot be set up", { namespace, problems, objects: objects.length });
    for (const o of objects.slice(0, TRUST_EVENT_OBJECTS))
      this.deps.recorder.event(o, "Warning", "TrustConflict", text);
  }
}
