// A small history-API router: the console's pages are paths under /ui (the gateway answers
// index.html for each, so a reload or a shared link opens the same page).
import { useEffect, useState } from "preact/hooks";

const listeners = new Set<() => void>();

export function navigate(path: string, replace = false): void {
  if (path === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  for (const l of listeners) l();
}

addEventListener("popstate", () => {
  for (const l of listeners) l();
});

/** The path segments after /ui, decoded; re-renders on navigation. */
export function useRoute(): string[] {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const l = () => setPath(location.pathname);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return path
    .replace(/^\/ui\/?/, "")
    .split("/")
    .filter(Boolean)
    .map((s) => decodeURIComponent(s));
}

/** The console's path of a page in a namespace: /ui/n/<ns>/<page>[/<name>]. */
export function pagePath(namespace: string, page: string, name?: string): string {
  const e = encodeURIComponent;
  return `/ui/n/${e(namespace)}/${page}${name ? `/${e(name)}` : ""}`;
}
