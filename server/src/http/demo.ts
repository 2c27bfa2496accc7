import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import express, { Router } from "express";

/** Where @tether/client keeps the demo page and its browser bundle. */
function demoDirectory(): string | undefined {
  try {
    const clientPackage = createRequire(import.meta.url).resolve("@tether/client/package.json");
    const dir = join(dirname(clientPackage), "demo");
    return existsSync(dir) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** `GET /`: the demo page (static files from @tether/client). */
export function demoRoutes(): Router {
  const router = Router();
  const dir = demoDirectory();
  if (dir) router.use(express.static(dir, { index: "index.html", maxAge: 0 }));
  return router;
}
