// A workspace's files through the gateway, mounted at /v1/namespaces/{ns}/workspaces:
//
//   GET    {name}/files?path=dir            DirListing (default: the workspace itself)
//   GET    {name}/files/content?path=file   the bytes; one Range (206, 416)
//   PUT    {name}/files/content?path=file   streamed upload, any content type, capped (413)
//   DELETE {name}/files/content?path=file   removes a file or directory (idempotent)
//   GET    {name}/files/archive?path=dir    the directory as a tar stream
//
// Reads need `get workspaces/files`, writes and deletes `update workspaces/files`. Paths are
// checked as the sandbox checks them, before it is called; the sandbox checks them again
// against its file system (symlinks).
import { Router, type Request, type Response } from "express";
import { TAR_MEDIA_TYPE } from "../../contracts/sandbox.ts";
import { problemOf } from "../problem.ts";
import {
  allow,
  audited,
  clientGone,
  DEFAULT_MAX_UPLOAD_BYTES,
  type DataPlaneDeps,
  filePath,
  fromPod,
  identityOf,
  params,
  pipeTo,
} from "./common.ts";
import { workspaceTarget } from "./targets.ts";

/** The route of a raw upload: its body is the file, never parsed as JSON. */
export const UPLOAD_ROUTE = /^\/namespaces\/[^/]+\/workspaces\/[^/]+\/files\/content$/;

const SANDBOX = "workspace's sandbox";

export function filesRouter(deps: DataPlaneDeps): Router {
  const router = Router({ mergeParams: true });
  const maxUpload = deps.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;

  const prepare = async (req: Request, res: Response, verb: "get" | "update") => {
    const { namespace, name } = params(req);
    await allow(deps, res, { verb, resource: "workspaces", subresource: "files", namespace, name });
    return {
      namespace,
      name,
      target: () => workspaceTarget(deps, namespace, name, "files", identityOf(res).user),
    };
  };
  const record = (verb: string, namespace: string, name: string) => ({
    verb,
    kind: "Workspace",
    namespace,
    name,
  });

  router.get("/:name/files", async (req, res) => {
    const path = filePath(req, true);
    const { namespace, name, target } = await prepare(req, res, "get");
    await audited(deps, req, res, record("files.list", namespace, name), async (note) => {
      note(`path=${path || "."}`);
      const t = await target();
      const listing = await t.client.listDir(t.id, path).catch((err: unknown) => {
        throw fromPod(err, SANDBOX);
      });
      res.json(listing);
    });
  });

  router.get("/:name/files/content", async (req, res) => {
    const path = filePath(req, false);
    const { namespace, name, target } = await prepare(req, res, "get");
    const range = req.get("range");
    await audited(deps, req, res, record("files.read", namespace, name), async (note) => {
      note(`path=${path}${range ? ` range=${range}` : ""}`);
      const t = await target();
      const signal = clientGone(res);
      const file = await t.client
        .openFile(t.id, path, { ...(range ? { range } : {}), signal })
        .catch((err: unknown) => {
          const p = fromPod(err, SANDBOX);
          // 416 names the size, as the sandbox said it.
          if ((p as { status?: number }).status === 416) {
            const size = /\((\d+) bytes\)/.exec(String((p as Error).message))?.[1];
            if (size) res.setHeader("content-range", `bytes */${size}`);
          }
          throw p;
        });
      res.status(file.status);
      res.setHeader("content-type", "application/octet-stream");
      res.setHeader("accept-ranges", "bytes");
      res.setHeader("cache-control", "no-store");
      for (const h of ["content-length", "content-range"]) {
        const v = file.headers.get(h);
        if (v) res.setHeader(h, v);
      }
      try {
        await pipeTo(file.body, res);
      } catch {
        if (!res.headersSent) throw problemOf(502, "the sandbox stopped sending the file");
        return void res.destroy();
      }
      res.end();
    });
  });

  router.put("/:name/files/content", async (req, res) => {
    const path = filePath(req, false);
    const declared = req.get("content-length");
    if (declared !== undefined && Number(declared) > maxUpload)
      throw problemOf(413, `the file is ${declared} bytes; uploads are limited to ${maxUpload} bytes`, {
        headers: { connection: "close" },
      });
    const { namespace, name, target } = await prepare(req, res, "update");
    await audited(deps, req, res, record("files.write", namespace, name), async (note) => {
      note(`path=${path}`);
      const t = await target();
      const stop = new AbortController();
      let seen = 0;
      let tooLarge = false;
      async function* capped(): AsyncGenerator<Uint8Array> {
        for await (const chunk of req as AsyncIterable<Buffer>) {
          seen += chunk.length;
          if (seen > maxUpload) {
            tooLarge = true;
            stop.abort(new Error("too large"));
            return;
          }
          yield chunk;
        }
      }
      const gone = clientGone(res);
      let created: boolean;
      try {
        ({ created } = await t.client.writeFileStream(t.id, path, capped(), {
          signal: AbortSignal.any([stop.signal, gone]),
          ...(declared !== undefined ? { length: Number(declared) } : {}),
        }));
      } catch (err) {
        if (tooLarge)
          throw problemOf(413, `the upload passed the limit of ${maxUpload} bytes; nothing was written`, {
            headers: { connection: "close" },
          });
        throw fromPod(err, SANDBOX);
      }
      note(`bytes=${seen}`);
      res.status(created ? 201 : 200).json({ path, bytes: seen, created });
    });
  });

  router.delete("/:name/files/content", async (req, res) => {
    const path = filePath(req, false);
    const { namespace, name, target } = await prepare(req, res, "update");
    await audited(deps, req, res, record("files.delete", namespace, name), async (note) => {
      note(`path=${path}`);
      const t = await target();
      await t.client.deleteFile(t.id, path).catch((err: unknown) => {
        throw fromPod(err, SANDBOX);
      });
      res.status(204).end();
    });
  });

  router.get("/:name/files/archive", async (req, res) => {
    const path = filePath(req, true);
    const { namespace, name, target } = await prepare(req, res, "get");
    await audited(deps, req, res, record("files.archive", namespace, name), async (note) => {
      note(`path=${path || "."}`);
      const t = await target();
      const tar = await t.client.archive(t.id, path, { signal: clientGone(res) }).catch((err: unknown) => {
        throw fromPod(err, SANDBOX);
      });
      const base = (path.split("/").at(-1) || name).replace(/[^\w.-]/g, "_");
      res.status(200);
      res.setHeader("content-type", TAR_MEDIA_TYPE);
      res.setHeader("content-disposition", `attachment; filename="${base}.tar"`);
      res.setHeader("cache-control", "no-store");
      try {
        await pipeTo(tar.body, res);
      } catch {
        return void res.destroy();
      }
      res.end();
    });
  });

  return router;
}
