import { nextClientAddress } from "@tether/testkit/address";
import { login, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createPublisher, loadConfig } from "../../src/index.js";

const API_KEY = "replay-budget-api-key-0123456789ab";
const EVENTS = 1_000;
const EVENT_BYTES = 12 * 1024;
/** One session's sockets on one instance (TETHER_MAX_SOCKETS_PER_SESSION's default). */
const SOCKETS = 32;
const MiB = 1024 * 1024;

/** A metric's value from the instance's /metrics (summed over its labels). */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, "gm"))].reduce((n, m) => n + Number(m[1]), 0);
}

/** A raw WebSocket that completes the handshake, then stops reading once welcomed (a stalled client). */
async function stalledClient(url: string, auth: object): Promise<WebSocket> {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`, {
    localAddress: nextClientAddress(),
  });
  ws.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    ws.on("message", (data) => {
      const frame = data.toString();
      if (frame.startsWith("0")) ws.send(`40${JSON.stringify(auth)}`);
      if (frame.startsWith('42["welcome"')) {
        // The client stops reading: what the server sends from now on piles up on its side.
        (ws as unknown as { _socket: { pause(): void } })._socket.pause();
        resolve();
      }
      if (frame.startsWith("44")) reject(new Error(`refused: ${frame}`));
    });
    ws.once("close", () => reject(new Error("closed before the welcome")));
  });
  return ws;
}

/**
 * Replay amplifies nothing (issue 18, item 5): a session's 32 sockets asking
 * for a 12 MB backlog from a made-up offset, then never reading, cost the
 * instance at most its replay buffer per socket, not the backlog per socket.
 */
describe("replay holds a bounded number of bytes per socket", () => {
  let redis: TestRedis;
  let server: TestInstance;
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    server = await startInstance({
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      // The defaults, not the tests' fast liveness: a stalled client lives until its ping timeout,
      // and the memory is measured while it does.
      TETHER_PING_INTERVAL: "25s",
      TETHER_PING_TIMEOUT: "20s",
    });
    const publisher = await createPublisher(loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent" }));
    const blob = "x".repeat(EVENT_BYTES);
    for (let i = 0; i < EVENTS; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => publisher.publish({ user: "admin" }, "bulk", { i: i + j, blob })),
      );
    }
    await publisher.close();
  });

  afterAll(async () => {
    for (const ws of sockets) ws.terminate();
    await server?.kill();
    await redis?.close();
  });

  it("32 stalled sockets replaying 1,000 × 12 KB from 0-0: the instance holds about their buffers, not 32 backlogs", async () => {
    const before = await metric(server.url, "process_resident_memory_bytes");
    const session = await login(server.url, API_KEY);
    for (let i = 0; i < SOCKETS; i++) {
      sockets.push(await stalledClient(server.url, { token: await wsToken(server.url, session), offset: "0-0" }));
    }
    // Every replay either waits on its socket, or (without a budget) finished writing the whole backlog.
    await waitFor(
      "every replay to wait for its socket or to finish",
      async () =>
        (await metric(server.url, "tether_replay_waits_total")) >= SOCKETS ||
        (await metric(server.url, "tether_replayed_events_total")) >= SOCKETS * EVENTS,
      { timeoutMs: 60_000 },
    );
    const grown = (await metric(server.url, "process_resident_memory_bytes")) - before;
    if (process.env.TETHER_TEST_REPORT) console.info(`replay: RSS grew by ${Math.round(grown / MiB)} MiB`);
    // The old code grew by 551 MiB here (32 backlogs of 12 MiB, held as strings and buffers until the ping
    // timeout); now each socket holds about its 1 MiB buffer and a page (about 210 MiB in all, garbage
    // not yet collected included).
    expect(grown, `grew by ${Math.round(grown / MiB)} MiB`).toBeLessThan(320 * MiB);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  }, 120_000);
});
