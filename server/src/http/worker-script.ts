import { type NextFunction, type Request, type Response, Router } from "express";
import { clientPackageFile } from "./client-package.js";

/** Where the browser asks for the SDK's SharedWorker: the client's `sharedWorkerUrl`. */
export const WORKER_SCRIPT_PATH = "/tether-worker.js";

/**
 * `GET /tether-worker.js`: the SharedWorker that holds one connection for all of
 * a browser's tabs. A worker must be same-origin with the page, so the server the
 * page talks to serves it. Revalidated on every load (`no-cache` + ETag), so tabs
 * pick up a new SDK as soon as the old worker's last tab is gone.
 */
export function workerScriptRoute(): Router {
  const router = Router();
  router.get(WORKER_SCRIPT_PATH, (_req: Request, res: Response, next: NextFunction) => {
    // Looked up per request: a client package built after the server started is served too.
    const file = clientPackageFile("dist/tether-worker.js");
    if (!file) return next();
    res.sendFile(file, { headers: { "cache-control": "no-cache", "content-type": "text/javascript; charset=utf-8" } });
  });
  return router;
}
