import { readFile } from "node:fs/promises";
import { join } from "node:path";
import express, { type Request, type Response, Router } from "express";
import { clientPackageFile } from "../http/client-package.js";

/** Where @tether/client keeps the demo page and its browser bundle. */
const demoDirectory = () => clientPackageFile("demo");

/** What the demo page is told about the server it runs on. */
export interface DemoPageInfo {
  /** `"embedded"`: sessions live in this process, so a restart ends them. */
  store: "redis" | "embedded";
  /** Whether the API key was generated (a new one per process in embedded mode) or given. */
  apiKeyGenerated: boolean;
}

/**
 * `<meta>` tags for the page's <head>: the page reads them to explain an embedded
 * server (a restart ends sessions, and a generated key changes with it). Nothing the
 * start banner does not already print, and no secret.
 */
export function demoMetaTags(info: DemoPageInfo): string {
  return [
    `<meta name="tether-store" content="${info.store}" />`,
    `<meta name="tether-api-key" content="${info.apiKeyGenerated ? "generated" : "configured"}" />`,
  ].join("\n    ");
}

/**
 * `GET /`: the demo page (static files from @tether/client), its index.html
 * with {@link demoMetaTags} in its head.
 */
export function demoRoutes(info: DemoPageInfo): Router {
  const router = Router();
  const dir = demoDirectory();
  if (!dir) return router;
  const index = join(dir, "index.html");
  const page = async (req: Request, res: Response) => {
    // `<base>` without its trailing slash: the page's relative URLs need one.
    const [path = "", query] = req.originalUrl.split("?", 2);
    if (req.path === "/" && !path.endsWith("/")) {
      res.redirect(301, `${path}/${query === undefined ? "" : `?${query}`}`);
      return;
    }
    // Read on every request, like the static files beside it (an edited page shows on reload).
    const html = await readFile(index, "utf8");
    res.setHeader("Cache-Control", "no-cache");
    res.type("html").send(html.replace("</head>", `  ${demoMetaTags(info)}\n  </head>`));
  };
  router.get(["/", "/index.html"], page);
  router.use(express.static(dir, { index: false, maxAge: 0 }));
  return router;
}
