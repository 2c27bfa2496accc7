import { connect } from "node:net";
import { ErrorCode, OFFSET_PATTERN, PAYLOAD_SHAPE_LIMITS } from "@tether/shared";
import { fetchFrom, nextClientAddress } from "@tether/testkit/address";
import { connectRaw, login, post, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { freePort } from "@tether/testkit/ports";
import { openRaw, type RawSocket } from "@tether/testkit/raw";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  createPublisher,
  createTether,
  loadConfig,
  type RunningServer,
  startServer,
  type Tether,
  TetherError,
  type WorkerPublisher,
} from "../../src/index.js";

const API_KEY = "connection-cap-test-api-key-0123456789";
/** The deadline to authenticate in the never-authenticating test (Socket.IO's own is 45 s). */
const CONNECT_TIMEOUT_MS = 10_000;
const PUBLISH_KEY = "connection-cap-test-publish-key-0123456789";

/** What a WebSocket upgrade from `localAddress` got: open (closed again at once), or the HTTP answer, or the socket error. */
async function upgrade(
  baseUrl: string,
  localAddress: string,
): Promise<{ open: true } | { status: number; retryAfter: string | undefined; body: string } | { error: string }> {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`, {
    localAddress,
  });
  return new Promise((resolve) => {
    ws.once("open", () => {
      ws.close();
      resolve({ open: true });
    });
    ws.once("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          retryAfter: res.headers["retry-after"],
          body: Buffer.concat(chunks).toString(),
        }),
      );
      res.on("error", (err) => resolve({ error: err.message }));
    });
    ws.once("error", (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

/** `openRaw` that reports a refusal instead of throwing: "HTTP 503", "ECONNRESET", … */
async function tryOpenRaw(baseUrl: string, localAddress: string): Promise<RawSocket | string> {
  try {
    return await openRaw(baseUrl, undefined, {}, localAddress);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

const loginFrom = (url: string, from: string) =>
  fetchFrom(from)(`${url}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ apiKey: API_KEY }),
  });

/** A refusal by the connection gate: 503, a retry hint, the contract's error body, and the connection closed. */
async function expectUnavailable(res: Response): Promise<void> {
  expect(res.status).toBe(503);
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  expect(res.headers.get("connection")).toBe("close");
  expect(await res.json()).toEqual({ error: { code: ErrorCode.Unavailable, message: expect.any(String) } });
}

/**
 * Issue 18, item 4: 200 WebSockets that never sent CONNECT, from one address, filled the
 * instance cap for 45 s, and every other address (login, ws-token, /readyz) got a bare reset.
 */
describe("connections: a short deadline to authenticate, a per-address limit, and 503s past the cap", () => {
  let redis: TestRedis;
  const opened: RawSocket[] = [];
  const env = (extra: Record<string, string>) => ({
    REDIS_URL: redis.url,
    TETHER_API_KEY: API_KEY,
    LOG_LEVEL: "info",
    ...extra,
  });

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const socket of opened) socket.close();
    await redis?.close();
  });

  describe("sockets that never authenticate", () => {
    let instance: TestInstance | undefined;
    afterAll(async () => {
      await instance?.kill();
    });

    it("from one address cannot lock others out, and are closed after TETHER_CONNECT_TIMEOUT", async () => {
      instance = await startInstance(
        env({
          TETHER_HTTP_MAX_CONNECTIONS: "40",
          TETHER_MAX_CONNECTIONS_PER_IP: "20",
          // Longer than opening the 40 takes on a loaded machine: a first socket closed by the deadline
          // while the last ones open frees a slot, and the count below would no longer be the limit's.
          TETHER_CONNECT_TIMEOUT: `${CONNECT_TIMEOUT_MS}ms`,
        }),
      );
      const url = instance.url;
      const attacker = nextClientAddress();
      // As many as the instance cap: before the per-address limit, they filled it (and every other address got a reset).
      const results: (RawSocket | string)[] = [];
      const openingAt = Date.now();
      for (let i = 0; i < 40; i++) results.push(await tryOpenRaw(url, attacker));
      const held = results.filter((result): result is RawSocket => typeof result !== "string");
      opened.push(...held);
      const refusals = results.filter((result): result is string => typeof result === "string");
      const openedAt = Date.now();
      expect(openedAt - openingAt, "opening the 40 outlasted the connect deadline").toBeLessThan(CONNECT_TIMEOUT_MS);
      expect(held.length).toBeLessThanOrEqual(20);
      expect(refusals.length).toBeGreaterThanOrEqual(20);
      expect(new Set(refusals)).toEqual(new Set(["HTTP 503"]));

      // Meanwhile, everyone else is served: login, ws-token, connect, readiness.
      const session = await login(url, API_KEY);
      const socket = await connectRaw(url, { token: await wsToken(url, session) });
      expect(socket.connected).toBe(true);
      socket.close();
      expect((await fetchFrom(nextClientAddress())(`${url}/readyz`)).status).toBe(200);

      // Socket.IO's own default would hold them 45 s.
      await waitFor("the unauthenticated sockets closed", () => held.every((raw) => !raw.isOpen()), {
        timeoutMs: 30_000,
      });
      expect(Date.now() - openedAt).toBeLessThan(CONNECT_TIMEOUT_MS + 15_000);
    });
  });

  describe("per-address limit (TETHER_MAX_CONNECTIONS_PER_IP)", () => {
    let instance: TestInstance | undefined;
    afterAll(async () => {
      await instance?.kill();
    });

    it("past it, that address gets 503 + Retry-After (HTTP and upgrades), never a reset; others and health checks are served", async () => {
      instance = await startInstance(
        env({ TETHER_MAX_CONNECTIONS_PER_IP: "5", TETHER_CONNECT_TIMEOUT: "30s", TETHER_HTTP_MAX_CONNECTIONS: "200" }),
      );
      const url = instance.url;
      const busy = nextClientAddress();
      const held: RawSocket[] = [];
      for (let i = 0; i < 5; i++) held.push(await openRaw(url, undefined, {}, busy));
      opened.push(...held);

      await expectUnavailable(await loginFrom(url, busy));
      const refusedUpgrade = await upgrade(url, busy);
      expect(refusedUpgrade).toMatchObject({ status: 503 });
      expect(Number((refusedUpgrade as { retryAfter?: string }).retryAfter)).toBeGreaterThanOrEqual(1);
      expect(JSON.parse((refusedUpgrade as { body: string }).body)).toMatchObject({
        error: { code: ErrorCode.Unavailable },
      });
      // Engine.IO's long-polling handshake is an HTTP request like any other.
      await expectUnavailable(await fetchFrom(busy)(`${url}/socket.io/?EIO=4&transport=polling`));
      // Probes come from the load balancer's address: never refused.
      expect((await fetchFrom(busy)(`${url}/readyz`)).status).toBe(200);
      expect((await fetchFrom(busy)(`${url}/healthz`)).status).toBe(200);

      expect((await loginFrom(url, nextClientAddress())).status).toBe(200);
      expect(await upgrade(url, nextClientAddress())).toEqual({ open: true });

      // It counts open connections: once they go, the address is served again.
      for (const raw of held) raw.close();
      await waitFor("the busy address served again", async () => (await loginFrom(url, busy)).status === 200);
    });
  });

  describe("instance cap (TETHER_HTTP_MAX_CONNECTIONS)", () => {
    let instance: TestInstance | undefined;
    afterAll(async () => {
      await instance?.kill();
    });

    it("past it, API requests and upgrades get 503 + Retry-After, health checks and metrics are still answered", async () => {
      instance = await startInstance(env({ TETHER_HTTP_MAX_CONNECTIONS: "12", TETHER_CONNECT_TIMEOUT: "30s" }));
      const url = instance.url;
      // Each from an address of its own: only the instance cap applies. Bounded: the cap and a few more.
      const held: RawSocket[] = [];
      let refused: RawSocket | string | undefined;
      for (let i = 0; i < 20 && refused === undefined; i++) {
        const result = await tryOpenRaw(url, nextClientAddress());
        if (typeof result === "string") refused = result;
        else held.push(result);
      }
      opened.push(...held);
      expect(refused).toBe("HTTP 503");
      expect(held.length).toBeLessThanOrEqual(12);

      await expectUnavailable(await loginFrom(url, nextClientAddress()));
      const refusedUpgrade = await upgrade(url, nextClientAddress());
      expect(refusedUpgrade).toMatchObject({ status: 503 });
      expect(Number((refusedUpgrade as { retryAfter?: string }).retryAfter)).toBeGreaterThanOrEqual(1);

      for (const path of ["/healthz", "/readyz"]) {
        expect((await fetchFrom(nextClientAddress())(`${url}${path}`)).status).toBe(200);
      }
      const metrics = await fetchFrom(nextClientAddress())(`${url}/metrics`);
      expect(metrics.status).toBe(200);
      const text = await metrics.text();
      expect(text).toMatch(/^tether_connections_refused_total\{reason="instance"\} [1-9]/m);
      expect(text).toMatch(/^tether_http_connections [1-9]/m);

      for (const raw of held) raw.close();
      await waitFor("the instance serving again", async () => (await loginFrom(url, nextClientAddress())).ok);
    });
  });
});

describe("the agent check's port (TETHER_AGENT_HOST)", () => {
  let redis: TestRedis;
  let server: RunningServer | undefined;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await server?.close();
    await redis?.close();
  });

  /** The agent's answer at host:port, or the connection error's code. */
  const ask = (host: string, port: number) =>
    new Promise<string>((resolve) => {
      let text = "";
      const socket = connect(port, host);
      socket.on("data", (chunk: Buffer) => {
        text += chunk.toString();
      });
      socket.on("end", () => resolve(text.trim()));
      socket.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });

  it("listens on 127.0.0.1 by default, whatever HOST the service binds", async () => {
    expect(loadConfig({}).agentHost).toBe("127.0.0.1");
    const agentPort = await freePort();
    // The service on another loopback address: the agent must not follow it.
    server = await startServer(
      loadConfig({
        REDIS_URL: redis.url,
        TETHER_API_KEY: API_KEY,
        HOST: "127.0.0.2",
        PORT: "0",
        TETHER_AGENT_PORT: String(agentPort),
        LOG_LEVEL: "silent",
      }),
    );
    expect(await ask("127.0.0.1", agentPort)).toMatch(/^up \d+%$/);
    expect(await ask("127.0.0.2", agentPort)).toBe("ECONNREFUSED");
  });

  it("TETHER_AGENT_HOST is validated", () => {
    expect(loadConfig({ TETHER_AGENT_HOST: "0.0.0.0" }).agentHost).toBe("0.0.0.0");
    expect(() => loadConfig({ TETHER_AGENT_HOST: "not a host!" })).toThrow(/TETHER_AGENT_HOST/);
  });
});

describe("settings", () => {
  it("have safe defaults, accept off, and name the variable on a bad value", () => {
    const defaults = loadConfig({});
    expect(defaults.connectTimeoutMs).toBe(10_000);
    expect(defaults.maxConnectionsPerIp).toBe(500);
    expect(loadConfig({ TETHER_MAX_CONNECTIONS_PER_IP: "off" }).maxConnectionsPerIp).toBe(0);
    expect(loadConfig({ TETHER_CONNECT_TIMEOUT: "2s" }).connectTimeoutMs).toBe(2_000);
    expect(() => loadConfig({ TETHER_MAX_CONNECTIONS_PER_IP: "lots" })).toThrow(/TETHER_MAX_CONNECTIONS_PER_IP/);
    expect(() => loadConfig({ TETHER_CONNECT_TIMEOUT: "soon" })).toThrow(/TETHER_CONNECT_TIMEOUT/);
  });
});

describe("a too-deep payload is refused at every publish entry", () => {
  let redis: TestRedis;
  let server: TestInstance;
  let worker: WorkerPublisher;
  let embedded: Tether;

  /** `{"v": [[[…]]]}` with `depth` levels of arrays. */
  const nested = (depth: number) => ({ v: JSON.parse(`${"[".repeat(depth)}${"]".repeat(depth)}`) as unknown });
  const tooDeep = PAYLOAD_SHAPE_LIMITS.maxDepth + 5;

  beforeAll(async () => {
    redis = await startRedis();
    server = await startInstance({ REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_PUBLISH_KEY: PUBLISH_KEY });
    worker = await createPublisher(loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent" }));
    embedded = await createTether({ config: loadConfig({ LOG_LEVEL: "silent" }) });
  });
  afterAll(async () => {
    await worker?.close();
    await embedded?.close();
    await server?.kill();
    await redis?.close();
  });

  it("POST /api/publish with a deeply nested body: 400 INVALID_INPUT (not 500), and the instance keeps serving", async () => {
    const headers = { authorization: `Bearer ${PUBLISH_KEY}` };
    // 7,000 deep overflows every recursive walker; 37 is just past the limit.
    for (const depth of [7_000, tooDeep]) {
      const body = `{"target":{"user":"u"},"event":"deep","data":{"v":${"[".repeat(depth)}${"]".repeat(depth)}}}`;
      const res = await post(`${server.url}/api/publish`, body, headers);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: { code: ErrorCode.InvalidInput, message: expect.any(String) } });
    }
    const ok = await post(
      `${server.url}/api/publish`,
      { target: { user: "u" }, event: "deep", data: nested(3) },
      headers,
    );
    expect(ok.status).toBe(202);
  });

  it("the worker's and the in-process publisher: a typed TetherError INVALID_INPUT", async () => {
    for (const publisher of [worker, embedded.publisher]) {
      for (const depth of [7_000, tooDeep]) {
        const refused = await publisher.publish({ user: "u" }, "deep", nested(depth)).catch((err: unknown) => err);
        expect(refused).toBeInstanceOf(TetherError);
        expect(refused).toMatchObject({ code: ErrorCode.InvalidInput });
      }
      await expect(publisher.publish({ user: "u" }, "deep", nested(3))).resolves.toMatch(OFFSET_PATTERN);
    }
  });
});
