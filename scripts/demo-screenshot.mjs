#!/usr/bin/env node
// `npm run screenshot`: docs/demo.png for the README. Starts one instance from source
// (embedded mode, as a first `npm start` runs) behind a small TCP relay, logs in with
// headless Chromium (/usr/bin/chromium, never a downloaded one) in two tabs that share
// one socket, cuts the relay's connections a few times so the reconnect chart has bars,
// runs a job (with a cut in it, so steps are replayed) and photographs the first tab.
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { createConnection, createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { freePort, waitUntil } from "./cluster/process.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "docs/demo.png");
const API_KEY = "screenshot-api-key-0123456789abcdef";
/** Network blips before the job (and one during it). */
const BLIPS = 3;
const DEADLINE_MS = 20_000;

/** Polls `check` until it holds, or fails after the deadline. */
const waitFor = (what, check) => waitUntil(what, check, { timeoutMs: DEADLINE_MS, intervalMs: 100 });

execFileSync(process.execPath, ["build-browser.mjs"], { cwd: join(ROOT, "client"), stdio: "inherit" });
const port = await freePort();
const url = `http://127.0.0.1:${port}/`;
const server = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "server/src/main.ts"], {
  cwd: ROOT,
  env: {
    ...process.env,
    PORT: String(port),
    HOST: "127.0.0.1",
    TETHER_API_KEY: API_KEY,
    TETHER_INSTANCE_ID: "tether-a1",
    // Quick liveness, so that each blip is noticed and healed in about a second.
    TETHER_PING_INTERVAL: "500ms",
    TETHER_PING_TIMEOUT: "500ms",
    LOG_LEVEL: "warn",
  },
  stdio: ["ignore", "ignore", "inherit"],
});
// The page's origin: a relay whose connections can be cut, as a network blip would
// (the shared socket lives in a SharedWorker, which browser offline emulation does not reach).
const relayPort = await freePort();
const open = new Set();
const relay = createServer((client) => {
  const upstream = createConnection({ host: "127.0.0.1", port });
  for (const socket of [client, upstream]) {
    open.add(socket);
    socket.on("error", () => socket.destroy()).on("close", () => open.delete(socket));
  }
  client.pipe(upstream).pipe(client);
});
await new Promise((resolve) => relay.listen(relayPort, "127.0.0.1", resolve));
const pageUrl = `http://127.0.0.1:${relayPort}/`;
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
try {
  await waitFor("the instance", async () => (await fetch(`${url}readyz`)).ok);
  const context = await browser.newContext({ viewport: { width: 1100, height: 820 }, colorScheme: "light" });
  const page = await context.newPage();
  await page.goto(pageUrl);
  await page.fill("#api-key", API_KEY);
  await page.click("#login");
  const connected = () => page.evaluate(() => document.getElementById("state").dataset.state === "connected");
  await waitFor("connected", connected);
  // A second tab on the same socket, for the shared-socket panel.
  const second = await context.newPage();
  await second.goto(pageUrl);
  await waitFor("two tabs on the socket", () =>
    page.evaluate(() => document.getElementById("share-tabs").textContent.startsWith("2 tabs")),
  );
  const blip = async () => {
    for (const socket of open) socket.destroy();
    await waitFor("reconnecting", () =>
      page.evaluate(() => document.getElementById("state").dataset.state !== "connected"),
    );
    await waitFor("connected again", connected);
  };
  for (let i = 0; i < BLIPS; i++) await blip();
  // One more while the job runs: the steps it missed are replayed.
  await page.click("#run-job");
  await waitFor("the job's first steps", () =>
    page.evaluate(() => Number(document.getElementById("progress-bar").value) >= 2),
  );
  await blip();
  await waitFor("the job well on", () =>
    page.evaluate(() => Number(document.getElementById("progress-bar").value) >= 14),
  );
  // One more poll of the figures, so the chart shows every reconnect.
  await page.waitForTimeout(600);
  await page.screenshot({ path: OUT, fullPage: true });
  process.stdout.write(`wrote ${OUT}\n`);
} finally {
  await browser.close();
  relay.close();
  for (const socket of open) socket.destroy();
  server.kill("SIGTERM");
  await once(server, "exit");
}
