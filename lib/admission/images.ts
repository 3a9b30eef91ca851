// Image policy: where images may come from, and no `latest` (explicit, or implied by an
// image with neither tag nor digest) unless the policy allows it.
import type { Findings, Policy } from "./types.ts";

export interface ImageRef {
  /** Registry host (with port), `docker.io` for Docker Hub short names. */
  registry: string;
  /** Repository path in the registry; Docker Hub official images get `library/`. */
  repository: string;
  tag: string | undefined;
  digest: string | undefined;
}

/** Splits an image reference the way container runtimes do (`nginx` → docker.io/library/nginx). */
export function parseImage(image: string): ImageRef {
  let rest = image.trim();
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const first = rest.split("/")[0] ?? "";
  const hasRegistry =
    rest.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  let registry = hasRegistry ? first.toLowerCase() : "docker.io";
  let repository = hasRegistry ? rest.slice(first.length + 1) : rest;
  if (registry === "index.docker.io" || registry === "registry-1.docker.io") registry = "docker.io";
  if (registry === "docker.io" && !repository.includes("/")) repository = `library/${repository}`;
  return { registry, repository, tag, digest };
}

/** Normalises a policy entry (`docker.io`, `ghcr.io/acme/`, `Registry.Example:5000`). */
function normaliseEntry(entry: string): string {
  const trimmed = entry.trim().replace(/\/+$/, "");
  const [host = "", ...path] = trimmed.split("/");
  const h = host.toLowerCase();
  const registry = h === "index.docker.io" || h === "registry-1.docker.io" ? "docker.io" : h;
  return [registry, ...path].join("/");
}

/** True when the image comes from one of the allowed registries (or path prefixes); any when empty. */
export function registryAllowed(ref: ImageRef, allowed: string[]): boolean {
  const entries = allowed.map(normaliseEntry).filter(Boolean);
  if (entries.length === 0) return true;
  const name = `${ref.registry}/${ref.repository}`;
  return entries.some((e) => name === e || name.startsWith(`${e}/`));
}

/** Checks one image field against the policy; problems are 403 (forbidden by policy). */
export function checkImage(f: Findings, field: string, image: string, policy: Policy): void {
  const ref = parseImage(image);
  if (!policy.allowLatest) {
    const pin = `pin a version tag or a digest (e.g. ${ref.registry}/${ref.repository}:1.2.3 or @sha256:...)`;
    if (ref.tag === "latest") {
      f.deny(field, `image "${image}" uses the tag latest, which this cluster does not allow; ${pin}`, 403);
    } else if (ref.tag === undefined && ref.digest === undefined) {
      f.deny(field, `image "${image}" has no tag or digest, which means latest; ${pin}`, 403);
    }
  }
  if (!registryAllowed(ref, policy.allowedRegistries)) {
    f.deny(
      field,
      `image "${image}" comes from ${ref.registry}, which this cluster does not allow; ` +
        `use an image from ${policy.allowedRegistries.join(", ")} (ask your platform team to allow another registry)`,
      403,
    );
  }
}
