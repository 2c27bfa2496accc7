import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createTetherClient, type PresencePayload, type TetherClient, TetherClientError } from "@tether/client";
import { launchChromium, type TestBrowser, WAIT_MS } from "@tether/testkit/browser";
import { MACHINE_LOAD_ENV } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import type { Page } from "playwright-core";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { holdRoom } from "../../react/src/provider.js";
import { type ReactExampleServer, startReactExampleServer } from "../react/server.js";
import { type ChatEvents, LOBBY, MAX_TEXT } from "../react/src/events.js";

const ROOT = resolve(import.meta.dirname, "../..");
const APP = join(ROOT, "examples/react");

/** A counter of the instance's Prometheus text, e.g. `tether_handshakes_total{result="ok"}`. */
async function counter(url: string, name: string, label: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((row) => row.startsWith(`${name}{`) && row.includes(label));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** The texts of the list `#id`'s items, as the page shows them now. */
function items(page: Page, id: string): Promise<string[]> {
  return page.$$eval(`#${id} > li`, (lis) => lis.map((li) => li.textContent?.trim() ?? ""));
}

async function waitForItem(page: Page, id: string, text: string): Promise<void> {
  await page.waitForFunction(
    ({ id, text }) => [...document.querySelectorAll(`#${id} > li`)].some((li) => li.textContent?.trim() === text),
    { id, text },
    { timeout: WAIT_MS, polling: 50 },
  );
}

/**
 * The React example (examples/react), built once by Vite in development mode, where
 * `<StrictMode>` mounts every component twice and runs every effect twice, served by
 * its own server on a real Redis, and driven in Chromium. A second user, a Node
 * client in the same room, watches what the page's user does there.
 */
/** React 18, installed apart (test/react18: npm workspaces keep it beside the repository's React 19). */
const REACT_18 = join(ROOT, "test/react18/node_modules");

/**
 * Each React major that @tether/react's peer range (`^18.0.0 || ^19.0.0`) claims: the repository's React 19,
 * and React 18 by aliasing `react` and `react-dom` (every import of them, the hooks' and
 * react-dom's own) to test/react18's copies.
 */
const REACTS: [version: string, alias: { find: RegExp; replacement: string }[]][] = [
  ["19.3.1", []],
  [
    "18.3.1",
    [
      { find: /^react-dom(\/.*)?$/, replacement: `${REACT_18}/react-dom$1` },
      { find: /^react(\/.*)?$/, replacement: `${REACT_18}/react$1` },
    ],
  ],
];

/** Whether the built page's scripts carry React `version` (its version string, as react-dom's build has it). */
function bundlesReact(outDir: string, version: string): boolean {
  const assets = join(outDir, "assets");
  return readdirSync(assets)
    .filter((file) => file.endsWith(".js"))
    .some((file) =>
      new RegExp(`["']${version.replaceAll(".", "\\.")}["']`).test(readFileSync(join(assets, file), "utf8")),
    );
}

describe.each(REACTS)("examples/react under StrictMode, React %s", (version, alias) => {
  let outDir: string;
  let redis: TestRedis;
  let server: ReactExampleServer;
  let chromium: TestBrowser;
  let bob: TetherClient<ChatEvents>;
  /** `presence:join` / `presence:leave` of the lobby, as the bystander saw them: `join ada`, `leave ada`. */
  const presence: string[] = [];
  /** The chat messages the bystander received, as `by: text`. */
  const heard: string[] = [];

  beforeAll(async () => {
    for (const built of ["client/dist/index.browser.js", "react/dist/index.js"]) {
      if (!existsSync(join(ROOT, built)))
        throw new Error(`${built} is missing: run \`npm run build\` first (npm test does)`);
    }
    outDir = mkdtempSync(join(tmpdir(), "tether-react-example-"));
    // React's development build: StrictMode's double mount happens only there.
    await build({
      root: APP,
      mode: "development",
      logLevel: "warn",
      define: { "process.env.NODE_ENV": JSON.stringify("development") },
      build: { outDir, emptyOutDir: true, minify: false, sourcemap: false },
      resolve: { alias },
    });
    const other = REACTS.map(([v]) => v).filter((v) => v !== version);
    if (!bundlesReact(outDir, version) || other.some((v) => bundlesReact(outDir, v)))
      throw new Error(`the example was not built with React ${version} alone`);
    redis = await startRedis();
    server = await startReactExampleServer(
      { ...MACHINE_LOAD_ENV, HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "error", REDIS_URL: redis.url },
      outDir,
    );
    for (const text of ["earlier one", "earlier two"])
      await server.tether.publisher.publish({ room: LOBBY }, "chat:message", { text, by: "seed" });

    bob = createTetherClient<ChatEvents>({ url: server.url });
    await bob.login({ name: "bob" });
    bob.connect();
    const lobby = bob.subscribe(LOBBY);
    // What bob saw of ada, the page's user.
    const record = (kind: string) => (payload: PresencePayload) => {
      if (payload.userId === "ada") presence.push(`${kind} ${payload.userId}`);
    };
    lobby.on("presence:join", record("join"));
    lobby.on("presence:leave", record("leave"));
    lobby.on("chat:message", ({ by, text }) => heard.push(`${by}: ${text}`));
    await waitFor("bob in the lobby", () => lobby.state === "subscribed", { timeoutMs: WAIT_MS });
    chromium = await launchChromium();
  });
  afterAll(async () => {
    bob?.close();
    await chromium?.close();
    await server?.close();
    await redis?.close();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  it("connects once, joins once, renders each pushed event once, with history, presence and state", async () => {
    const handshakesBefore = await counter(server.url, "tether_handshakes_total", 'result="ok"');
    const context = await chromium.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    /** Socket.IO connections the page's WebSockets opened. */
    let webSockets = 0;
    page.on("pageerror", (error) => errors.push(error.message));
    /** The Socket.IO events the page sent, by name (`42["room:join",…]` → `room:join`). */
    const sent: string[] = [];
    page.on("websocket", (socket) => {
      // Socket.IO's CONNECT accepted (`40{"sid":…}`); a refused one (`44`, e.g. admission control on a busy machine) is retried.
      socket.on("framereceived", ({ payload }) => {
        if (String(payload).startsWith("40")) webSockets += 1;
      });
      socket.on("framesent", ({ payload }) => {
        const name = /^42\d*\["([^"]+)"/.exec(String(payload))?.[1];
        if (name) sent.push(name);
      });
    });
    const sentOf = (name: string) => sent.filter((event) => event === name).length;
    await page.goto(server.url);
    await page.fill("#name", "ada");
    await page.click("#login button[type=submit]");

    await page.waitForFunction(
      () => document.querySelector<HTMLElement>("#state")?.dataset.state === "connected",
      null,
      {
        timeout: WAIT_MS,
        polling: 50,
      },
    );
    // The room opens once connected, as a page the user navigates to: StrictMode mounts it twice.
    await page.click("#toggle-lobby");
    await page.waitForFunction(() => document.querySelector("#room-state")?.textContent === "subscribed", null, {
      timeout: WAIT_MS,
      polling: 50,
    });
    // History: the lobby's events from before the page joined, oldest first.
    await page.waitForFunction(() => document.querySelector<HTMLElement>("#history")?.dataset.loaded === "true", null, {
      timeout: WAIT_MS,
      polling: 50,
    });
    expect(await items(page, "history")).toEqual(["earlier one", "earlier two"]);
    // Presence: both users, ada with the data her subscription joined with.
    await waitForItem(page, "members", "ada (here)");
    await waitForItem(page, "members", "bob");

    // Pushed events: each rendered once, and counted once by useEvent's one listener.
    await server.tether.publisher.publish({ room: LOBBY }, "chat:message", { text: "live one", by: "server" });
    await server.tether.publisher.publish({ room: LOBBY }, "chat:message", { text: "live two", by: "server" });
    await waitForItem(page, "events", "server: live two");
    // An event sent from the page, through the server's handler, back to the room.
    await page.fill("#text", "hello from ada");
    await page.click("#say button[type=submit]");
    await waitForItem(page, "events", "ada: hello from ada");
    await waitFor("bob to hear ada", () => heard.includes("ada: hello from ada"), { timeoutMs: WAIT_MS });
    expect(await items(page, "events")).toEqual(["server: live one", "server: live two", "ada: hello from ada"]);
    expect(await page.textContent("#received")).toBe("3");

    // One connection: one accepted handshake at the server, one in the page.
    expect(await counter(server.url, "tether_handshakes_total", 'result="ok"')).toBe(handshakesBefore + 1);
    expect(webSockets).toBe(1);
    // One join, no leave: on the wire, and as the other user saw ada arrive.
    expect([sentOf("room:join"), sentOf("room:leave")]).toEqual([1, 0]);
    expect(presence).toEqual(["join ada"]);
    expect(await page.textContent("#state")).toBe("connected");
    expect(errors).toEqual([]);

    // Presence kept current: another user arrives with data, changes it, and goes.
    const dave = createTetherClient<ChatEvents>({ url: server.url });
    try {
      await dave.login({ name: "dave" });
      dave.connect();
      const lobby = dave.subscribe(LOBBY, { presence: { status: "typing" } });
      await waitForItem(page, "members", "dave (typing)");
      await lobby.setPresence({ status: "idle" });
      await waitForItem(page, "members", "dave (idle)");
      await lobby.leave();
      await page.waitForFunction(
        () => ![...document.querySelectorAll("#members > li")].some((li) => li.textContent?.startsWith("dave")),
        null,
        { timeout: WAIT_MS, polling: 50 },
      );
    } finally {
      dave.close();
    }
    expect((await items(page, "members")).sort()).toEqual(["ada (here)", "bob"]);

    // Closing the room leaves it, once: its last holder let go.
    await page.click("#toggle-lobby");
    await waitFor("ada to leave the lobby", () => presence.includes("leave ada"), { timeoutMs: WAIT_MS });
    expect(presence).toEqual(["join ada", "leave ada"]);
    expect([sentOf("room:join"), sentOf("room:leave")]).toEqual([1, 1]);
    expect(await page.textContent("#state")).toBe("connected");
    await context.close();
  });

  it("a refused room ends its shared subscription, and the next holder subscribes anew", async () => {
    const carol = createTetherClient({ url: server.url });
    try {
      await carol.login({ name: "carol" });
      carol.connect();
      const first = holdRoom(carol, "not-the-lobby", {});
      await waitFor("the refusal", () => first.value.state === "ended", { timeoutMs: WAIT_MS });
      const second = holdRoom(carol, "not-the-lobby", {});
      expect(second.value).not.toBe(first.value);
      first.release();
      second.release();
      expect(carol.state).toBe("connected");
    } finally {
      carol.close();
    }
  });

  it("refuses hostile chat:send payloads with INVALID_INPUT; the sender keeps its socket", async () => {
    const codeOf = (sent: Promise<unknown>) =>
      sent.then(
        () => "accepted",
        (error: unknown) => (error instanceof TetherClientError ? error.code : String(error)),
      );
    expect(await codeOf(bob.emitWithAck("chat:send", { text: "x".repeat(MAX_TEXT + 1) }))).toBe("INVALID_INPUT");
    expect(await codeOf(bob.emitWithAck("chat:send", { text: 42 as unknown as string }))).toBe("INVALID_INPUT");
    expect(await codeOf(bob.emitWithAck("chat:send", { text: "   " }))).toBe("INVALID_INPUT");
    const deep = JSON.parse(`${'{"a":'.repeat(500)}1${"}".repeat(500)}`) as { text: string };
    expect(await codeOf(bob.emitWithAck("chat:send", deep))).toBe("INVALID_INPUT");
    expect(bob.state).toBe("connected");
    expect(await codeOf(bob.emitWithAck("chat:send", { text: "still here" }))).toBe("accepted");
    await waitFor("bob to hear himself", () => heard.includes("bob: still here"), { timeoutMs: WAIT_MS });
  });
});
