// The web console's static files under /ui (console/, bundled by `npm run build` into
// dist/console). Served without authentication: the files hold no data and no secret; the
// app signs in against /v1 with a bearer token it keeps in sessionStorage. Every answer
// carries a Content-Security-Policy that lets the page load only its own files and talk only
// to this gateway, so nothing is fetched from elsewhere at run time.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import express, { Router, type Response } from "express";
import { problemOf } from "./problem.ts";

export const CONSOLE_PATH = "/ui";

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

function secure(res: Response): void {
  res.setHeader("content-security-policy", CSP);
  res.setHeader("x-content-type-options", "nosniff");
  res.setHeader("referrer-policy", "no-referrer");
  res.setHeader("x-frame-options", "DENY");
}

/**
 * The console router, mounted at /ui. `dir` holds index.html and the bundle; when it has no
 * index.html (the console was not built) /ui answers 404 saying how to build it.
 */
export function consoleRouter(dir: string): Router {
  const root = resolve(dir);
  const index = join(root, "index.html");
  const router = Router();
  router.use((_req, res, next) => {
    secure(res);
    next();
  });
  router.use(
    express.static(root, {
      index: false,
      redirect: false,
      fallthrough: true,
      dotfiles: "ignore",
      // Bundles are named by content hash (index.html names them): cached for good.
      setHeaders: (res, path) =>
        res.setHeader(
          "cache-control",
          /\.[0-9A-Z]{8}\.(js|css)$/.test(path) ? "public, max-age=31536000, immutable" : "no-cache",
        ),
    }),
  );
  // Every other GET is a page of the single-page app: its routes live in the URL's hash-free
  // path, so a reload of /ui/workspaces/x answers the app too.
  router.get(/.*/, (req, res, next) => {
    if (/\.[a-z0-9]+$/i.test(req.path)) return next(problemOf(404, `no console file ${req.path}`));
    if (!existsSync(index))
      return next(
        problemOf(
          404,
          `the console is not built in ${root}; run \`npm run build\` (or set --console-dir to where it was built)`,
        ),
      );
    res.setHeader("cache-control", "no-cache");
    res.sendFile(index);
  });
  return router;
}
