import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createHttpServer, createTether, loadConfig, securityHeaders, type Tether } from "@tether/server";
import { CHROMIUM_ARGS, CHROMIUM_PATH, WAIT_MS } from "@tether/testkit/browser";
import express from "express";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const APP = join(ROOT, "examples/vite-browser");
/**
 * The SDK's budget in a browser bundle (BUNDLE_LIMIT_BYTES of scripts/check-packages.mjs, 80 KB),
 * plus the example's own code and what Vite's minifier leaves over esbuild's (about 7 KB together).
 */
const APP_BUNDLE_LIMIT_BYTES = 80 * 1024 + 8 * 1024;

/**
 * The Vite example, built by `vite build` as its users would (the SDK's published browser
 * build, so the packages must be built: `npm test` builds them first), then served beside
 * a Tether instance and driven in Chromium: log in, connect, run a job, see it finish.
 */
describe("examples/vite-browser", () => {
  let outDir: string;
  let tether: Tether;
  let http: Server;
  let url: string;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, "client/dist/index.browser.js"))) {
      throw new Error("client/dist is missing: run `npm run build` first (npm test does)");
    }
    outDir = mkdtempSync(join(tmpdir(), "tether-vite-example-"));
    await build({ root: APP, logLevel: "warn", build: { outDir, emptyOutDir: true } });

    const config = loadConfig({ HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "warn" }); // embedded mode
    tether = await createTether({ config, demo: true });
    const app = express();
    app.use(securityHeaders());
    app.use(tether.router);
    app.use(express.static(outDir));
    http = createHttpServer(config.http, app);
    tether.attach(http);
    await new Promise<void>((done) => http.listen(0, "127.0.0.1", done));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await tether?.close();
    http?.closeAllConnections();
    await new Promise((done) => http?.close(done));
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  it("bundles the SDK's browser build: no Node cookie jar, within the size budget", () => {
    const assets = readdirSync(join(outDir, "assets")).filter((file) => file.endsWith(".js"));
    expect(assets).toHaveLength(1);
    const code = readFileSync(join(outDir, "assets", assets[0] ?? ""), "utf8");
    expect(readFileSync(join(outDir, "index.html"), "utf8")).toContain(`/assets/${assets[0]}`);
    expect(code).not.toMatch(/tough-cookie|fetch-cookie|CookieJar/);
    expect(code).toContain("/socket.io/");
    expect(Buffer.byteLength(code)).toBeLessThanOrEqual(APP_BUNDLE_LIMIT_BYTES);
  });

  it("logs in, connects and receives a job's events in Chromium", async () => {
    const { chromium } = await import("playwright-core");
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(error.message));
      await page.goto(url);
      await page.fill("#api-key", tether.apiKey);
      await page.click("button[type=submit]");
      await page.waitForFunction(() => document.querySelector("#state")?.textContent === "connected", undefined, {
        timeout: WAIT_MS,
      });
      await page.click("#run-job");
      await page.waitForFunction(
        () => /job \S+ done/.test(document.querySelector("#events")?.textContent ?? ""),
        undefined,
        {
          timeout: WAIT_MS,
        },
      );
      expect(await page.textContent("#events")).toContain("5/5");
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
