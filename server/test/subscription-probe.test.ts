import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { RecoveryPayload } from "@tether/shared";
import { fetchFrom, nextClientAddress } from "@tether/testkit/address";
import {
  connectRaw,
  HandshakeRefused,
  login,
  type TestSession,
  type WelcomedSocket,
  wsToken,
} from "@tether/testkit/http";
import { LOG_DIR, startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { startRedisCluster, type TestRedisCluster } from "@tether/testkit/redis-cluster";
import { type RedisProxy, startRedisProxy } from "@tether/testkit/redis-proxy";
import { idleFor, waitFor } from "@tether/testkit/wait";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createPublisher, loadConfig, type WorkerPublisher } from "../src/index.js";

const API_KEY = "subscription-probe-api-key-0123456789";
const HOST = resolve(import.meta.dirname, "rooms/host.ts");
/** Longer than the freezes below: the client must stay connected through them (the case under test). */
const SLOW_PINGS = { TETHER_PING_INTERVAL: "20s", TETHER_PING_TIMEOUT: "20s" };

/** The `seq` of every `tick` a raw socket received, in order of arrival. */
const ticks = (socket: WelcomedSocket) =>
  socket.received.filter(([event]) => event === "tick").map(([, payload]) => (payload as { seq: number }).seq);
const recoveries = (socket: WelcomedSocket) =>
  socket.received.filter(([event]) => event === "recovery").map(([, payload]) => payload as RecoveryPayload);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Calls per command since the last CONFIG RESETSTAT (`cmdstat_<name>:calls=N,…`). */
async function commandCalls(client: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const match of (await client.info("commandstats")).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    calls.set(match[1] ?? "", Number(match[2]));
  return calls;
}

const pubsubClients = async (client: Redis, name: string) =>
  ((await client.call("CLIENT", "LIST", "TYPE", "pubsub")) as string)
    .split("\n")
    .filter((line) => line.includes(` name=${name} `)).length;

describe("a subscriber connection Redis dropped while the instance was frozen", () => {
  let redis: TestRedis;
  let b: TestInstance;
  let publisher: WorkerPublisher;

  beforeAll(async () => {
    // A small pub/sub output buffer: a frozen instance's subscriber is dropped within the burst.
    redis = await startRedis({ args: ["--client-output-buffer-limit", "pubsub", "64kb", "0", "0"] });
    const limits = { TETHER_RECOVERY_MAX_EVENTS: "10000" };
    b = await startInstance({ REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, ...SLOW_PINGS, ...limits });
    publisher = await createPublisher(loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent", ...limits }));
  });

  afterAll(async () => {
    b?.process.kill("SIGCONT");
    await publisher?.close();
    await b?.kill();
    await redis?.close();
  });

  it("B frozen while four publishers add 2,000 events, then quiet: every event reaches B's client once, within seconds", async () => {
    const session = await login(b.url, API_KEY);
    const socket = await connectRaw(b.url, { token: await wsToken(b.url, session) });
    try {
      const control = redis.client();
      expect(await pubsubClients(control, "tether:sub")).toBe(1);
      const pad = "x".repeat(4_000);
      b.process.kill("SIGSTOP");
      try {
        await Promise.all(
          range(0, 3).map(async (p) => {
            for (let i = 0; i < 500; i++) await publisher.publish({ user: "admin" }, "tick", { seq: p * 500 + i, pad });
          }),
        );
        // Redis really dropped B's subscriber (past the pub/sub output buffer limit): a stopped
        // process closes nothing itself. (Redis 7.0 has no INFO counter of these disconnections.)
        await waitFor(
          "Redis to drop the frozen subscriber",
          async () => (await pubsubClients(control, "tether:sub")) === 0,
        );
      } finally {
        b.process.kill("SIGCONT");
      }
      const resumed = Date.now();
      await waitFor("all 2,000 ticks on B", () => ticks(socket).length >= 2_000, { timeoutMs: 5_000 });
      console.log(`frozen subscriber: every event delivered ${Date.now() - resumed} ms after SIGCONT`);
      expect([...ticks(socket)].sort((x, y) => x - y)).toEqual(range(0, 1_999));
      expect(recoveries(socket)).toEqual([]);
      expect(socket.connected).toBe(true);
    } finally {
      socket.close();
    }
  });
});

describe("the delivery probe", () => {
  let redis: TestRedis;
  let proxy: RedisProxy;
  let server: TestInstance;
  let publisher: WorkerPublisher;
  let session: TestSession;
  const name = `probe-${process.pid}`;
  const sockets: WelcomedSocket[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    proxy = await startRedisProxy(redis.port);
    server = await startInstance({ REDIS_URL: proxy.url, TETHER_API_KEY: API_KEY, TETHER_INSTANCE_ID: name });
    publisher = await createPublisher(loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent" }));
    session = await login(server.url, API_KEY);
  });

  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
  });

  afterAll(async () => {
    await publisher?.close();
    await server?.kill();
    await proxy?.close();
    await redis?.close();
  });

  async function connect(): Promise<WelcomedSocket> {
    const socket = await connectRaw(server.url, { token: await wsToken(server.url, session) });
    sockets.push(socket);
    return socket;
  }

  it("a subscriber connection gone half-open (Redis dropped it, the instance heard nothing): the probe finds it, the lost last events arrive", async () => {
    const socket = await connect();
    await publisher.publish({ user: "admin" }, "tick", { seq: 1 });
    await waitFor("the first tick", () => ticks(socket).length === 1);
    expect(proxy.deafen("tether:sub")).toBe(1);
    const control = redis.client();
    await waitFor("Redis to see the subscriber gone", async () => (await pubsubClients(control, "tether:sub")) === 0);
    // Published while nobody listens, and nothing after them reveals the gap.
    await publisher.publish({ user: "admin" }, "tick", { seq: 2 });
    await publisher.publish({ user: "admin" }, "tick", { seq: 3 });
    const lost = Date.now();
    // The default probe interval: found within about two of them (not the 30 s of a periodic head check).
    await waitFor("the lost ticks", () => ticks(socket).length === 3, { timeoutMs: 15_000 });
    console.log(`half-open subscriber: lost last events delivered ${Date.now() - lost} ms later`);
    expect(ticks(socket)).toEqual([1, 2, 3]);
    expect(recoveries(socket)).toEqual([]);
    expect(readFileSync(join(LOG_DIR, `${name}.log`), "utf8")).toMatch(/delivery probe did not return/);
  });

  it("the first reconnect of the subscriber after start re-reads: an event published while it was down arrives", async () => {
    const socket = await connect();
    await publisher.publish({ user: "admin" }, "tick", { seq: 1 });
    await waitFor("the first tick", () => ticks(socket).length === 1);
    await redis.client().client("KILL", "TYPE", "pubsub");
    // Most likely before the instance subscribed again; either way it must arrive, and nothing follows it.
    await publisher.publish({ user: "admin" }, "tick", { seq: 2 });
    await waitFor("the tick published across the reconnect", () => ticks(socket).length === 2, { timeoutMs: 3_000 });
    expect(ticks(socket)).toEqual([1, 2]);
  });
});

describe("the idle cost of live streams", () => {
  let redis: TestRedis;
  let server: TestInstance;
  const sockets: WelcomedSocket[] = [];
  const USERS = 8;
  const ROOMS = 49;
  const INTERVAL_MS = 500;

  beforeAll(async () => {
    redis = await startRedis();
    const dir = mkdtempSync(join(tmpdir(), "tether-probe-"));
    const policy = join(dir, "policy.json");
    writeFileSync(policy, "{}");
    const granted = Object.fromEntries(
      range(0, USERS - 1).map((u) => [`u${u}`, range(0, ROOMS - 1).map((r) => `idle-${u}-${r}`)]),
    );
    server = await startInstance(
      {
        REDIS_URL: redis.url,
        TETHER_API_KEY: API_KEY,
        TETHER_STREAM_CHECK_INTERVAL: `${INTERVAL_MS}ms`,
        TETHER_INSTANCE_ID: `idle-${process.pid}`,
        ROOMS_POLICY: policy,
        ROOMS_OF: JSON.stringify(granted),
      },
      { main: HOST },
    );
  });

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await server?.kill();
    await redis?.close();
  });

  it(`${USERS * (ROOMS + 1)} idle streams cost no Redis command per stream over the probe intervals`, async () => {
    for (let u = 0; u < USERS; u++) {
      const from = nextClientAddress();
      const res = await fetchFrom(from)(`${server.url}/api/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ apiKey: API_KEY, user: `u${u}` }),
      });
      expect(res.status).toBe(200);
      const session = { cookie: (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "", address: from };
      // A fresh process on a shared machine may turn a handshake away as busy (admission control): retry.
      const socket = await waitFor(`u${u} connected`, async () => {
        const token = await wsToken(server.url, session);
        return connectRaw(server.url, { token }).catch((err: unknown) => {
          if (err instanceof HandshakeRefused && err.message === "UNAVAILABLE") return undefined;
          throw err;
        });
      });
      sockets.push(socket);
      expect(Object.keys(socket.welcome.rooms ?? {})).toHaveLength(ROOMS);
    }
    const control = redis.client();
    // The connects' own reads (each stream's head once its subscription is confirmed) settle first.
    await idleFor(INTERVAL_MS);
    await control.config("RESETSTAT");
    // Idle is the scenario: several probe intervals pass with no event published.
    await idleFor(4 * INTERVAL_MS);
    const calls = await commandCalls(control);
    const total = [...calls.values()].reduce((sum, n) => sum + n, 0);
    console.log(`idle: ${USERS * (ROOMS + 1)} streams, ${total} commands in ${4 * INTERVAL_MS} ms`, calls);
    // No head check or read per stream; the probe is the only delivery cost (one per subscriber connection).
    expect(calls.get("hmget") ?? 0).toBe(0);
    expect(calls.get("spublish") ?? 0).toBeGreaterThanOrEqual(2);
    expect(total).toBeLessThan(USERS * (ROOMS + 1));
  });
});

describe("the delivery probe on a Redis Cluster", () => {
  let cluster: TestRedisCluster;
  let server: TestInstance;
  let publisher: WorkerPublisher;
  const name = `probe-cluster-${process.pid}`;
  const nodes = () => cluster.urls.split(",").map((url) => new URL(url));

  beforeAll(async () => {
    cluster = await startRedisCluster();
    const env = { REDIS_URL: cluster.urls, TETHER_REDIS_CLUSTER: "on", TETHER_API_KEY: API_KEY };
    server = await startInstance({ ...env, TETHER_STREAM_CHECK_INTERVAL: "500ms", TETHER_INSTANCE_ID: name });
    publisher = await createPublisher(loadConfig({ ...env, LOG_LEVEL: "silent" }));
  }, 90_000);

  afterAll(async () => {
    await publisher?.close();
    await server?.kill();
    await cluster?.close();
  });

  /** `redis-cli` against one node. */
  const cli = (url: URL, ...args: string[]) =>
    new Promise<string>((done, fail) =>
      execFile("redis-cli", ["-p", url.port, ...args], (err, out) => (err ? fail(err) : done(out))),
    );

  it("one probe channel per master, each SPUBLISHed on its master and back; a killed shard subscriber re-reads", async () => {
    // Every master carries probes (its own SPUBLISH calls) and none went missing.
    await waitFor("a probe through every master", async () => {
      const calls = await Promise.all(nodes().map((url) => cli(url, "INFO", "commandstats")));
      return calls.every((text) => /cmdstat_spublish:calls=[1-9]/.test(text));
    });
    const session = await login(server.url, API_KEY);
    const socket = await connectRaw(server.url, { token: await wsToken(server.url, session) });
    try {
      await publisher.publish({ user: "admin" }, "tick", { seq: 1 });
      await waitFor("the first tick", () => ticks(socket).length === 1);
      // Every shard subscriber dropped; one event published across it, then quiet.
      await Promise.all(nodes().map((url) => cli(url, "CLIENT", "KILL", "TYPE", "pubsub")));
      await publisher.publish({ user: "admin" }, "tick", { seq: 2 });
      // (Resubscribing to every shard and re-reading takes a loaded machine seconds: a deadline, not a bound.)
      await waitFor("the tick published across the drop", () => ticks(socket).length === 2, { timeoutMs: 15_000 });
      expect(ticks(socket)).toEqual([1, 2]);
    } finally {
      socket.close();
    }
    // Probes kept returning through a healthy cluster: no false alarm (the kill is a reconnect, not a probe loss).
    const log = readFileSync(join(LOG_DIR, `${name}.log`), "utf8");
    expect(log).not.toMatch(/delivery probe did not return/);
  });
});
