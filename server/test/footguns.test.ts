/**
 * Issue 22, the server's footguns: embedded mode is explicit in production and announced
 * elsewhere, `login: false` mounts no login, app fields named like Tether's own (`offset`,
 * `room`) are refused at every publish entry, and the error shape (`ErrorCode`,
 * `retryAfterMs`) is exported. Real HTTP servers, a real redis-server for the worker publisher.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { post } from "@tether/testkit/http";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import express from "express";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ConfigError,
  createPublisher,
  createTether,
  ErrorCode,
  loadConfig,
  type Tether,
  TetherError,
} from "../src/index.js";

const SECRET = "footguns-session-secret-0123456789abcdef";
const PUBLISH_KEY = "footguns-publish-key-0123456789";

/** A pino logger that keeps every line it writes. */
function recordingLogger() {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/** Mounts a Tether on a real HTTP server, with a JSON 404 behind it. */
async function serve(tether: Tether): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  // A host's own token route (its users signed in by the host).
  app.get("/my/tether-token", async (req, res) => {
    res.json(
      await tether.issueTokenFor(req, {
        userId: String(req.query.user),
        sessionKey: "footguns-host-session-0001",
        expiresAt: Date.now() + 60_000,
      }),
    );
  });
  app.use(tether.router);
  app.use((_req, res) => void res.status(404).json({ host: "not found" }));
  const http: Server = createServer(app);
  tether.attach(http);
  await new Promise<void>((done) => http.listen(0, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    async close() {
      await tether.close();
      await new Promise<void>((done) => http.close(() => done()));
    },
  };
}

describe("embedded mode is a choice", () => {
  const production = { NODE_ENV: "production", REDIS_URL: "", TETHER_SESSION_SECRET: SECRET, LOG_LEVEL: "silent" };

  it("NODE_ENV=production without REDIS_URL refuses to start, saying what to set", async () => {
    const config = loadConfig({ ...production, TETHER_API_KEY: "footguns-api-key-0123456789" });
    const refused = await createTether({ config }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(ConfigError);
    expect(String((refused as Error).message)).toMatch(/REDIS_URL: required with NODE_ENV=production/);
    expect(String((refused as Error).message)).toMatch(/store: "memory"/);
  });

  it('NODE_ENV=production with store: "memory" starts embedded, without a warning', async () => {
    const { logger, lines } = recordingLogger();
    const config = loadConfig({ ...production, TETHER_API_KEY: "footguns-api-key-0123456789" });
    const tether = await createTether({ config, store: "memory", logger });
    expect(tether.backend.kind).toBe("embedded");
    expect(lines.filter((line) => /embedded/i.test(line.msg))).toEqual([]);
    await tether.close();
  });

  it("outside production, no REDIS_URL logs one warning line that it runs embedded", async () => {
    const { logger, lines } = recordingLogger();
    const tether = await createTether({ config: loadConfig({ REDIS_URL: "", LOG_LEVEL: "silent" }), logger });
    const warnings = lines.filter((line) => line.level === 40 && /embedded/i.test(line.msg));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toMatch(/REDIS_URL/);
    await tether.close();
  });

  it('store: "memory" with REDIS_URL set is refused: one or the other', async () => {
    const config = loadConfig({ REDIS_URL: "redis://127.0.0.1:1", LOG_LEVEL: "silent" });
    await expect(createTether({ config, store: "memory" })).rejects.toBeInstanceOf(ConfigError);
  });
});

describe("login: false", () => {
  it("mounts no login route and needs no TETHER_API_KEY in production; tokens come from issueTokenFor", async () => {
    const config = loadConfig({
      NODE_ENV: "production",
      REDIS_URL: "",
      TETHER_SESSION_SECRET: SECRET,
      LOG_LEVEL: "silent",
    });
    const tether = await createTether({ config, store: "memory", login: false });
    const server = await serve(tether);
    try {
      const res = await post(`${server.url}/api/auth/login`, { apiKey: tether.apiKey });
      // The host's 404: Tether answered nothing.
      expect(res).toMatchObject({ status: 404, body: { host: "not found" } });
      const issued = await fetch(`${server.url}/my/tether-token?user=alice`);
      expect(issued.status).toBe(200);
      expect(((await issued.json()) as { token: string }).token).toEqual(expect.any(String));
    } finally {
      await server.close();
    }
  });
});

describe("app fields named like Tether's own are refused at publish", () => {
  let redis: TestRedis;
  let tether: Tether;
  let server: { url: string; close(): Promise<void> };
  beforeAll(async () => {
    redis = await startRedis();
    tether = await createTether({
      config: loadConfig({ REDIS_URL: redis.url, TETHER_PUBLISH_KEY: PUBLISH_KEY, LOG_LEVEL: "silent" }),
    });
    server = await serve(tether);
  });
  afterAll(async () => {
    await server?.close();
    await redis?.close();
  });

  it("in process, from a worker and over HTTP: INVALID_INPUT naming the field; nothing is appended", async () => {
    for (const field of ["offset", "room"]) {
      const data = { [field]: "mine", other: 1 };
      await expect(tether.publisher.publish({ user: "fg-alice" }, "note", data)).rejects.toMatchObject({
        code: ErrorCode.InvalidInput,
        message: expect.stringContaining(`"${field}"`),
      });
      const worker = await createPublisher(loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent" }));
      try {
        await expect(worker.publish({ room: "fg-room" }, "note", data)).rejects.toMatchObject({
          code: ErrorCode.InvalidInput,
          message: expect.stringContaining(`"${field}"`),
        });
      } finally {
        await worker.close();
      }
      const res = await post(
        `${server.url}/api/publish`,
        { target: { room: "fg-room" }, event: "note", data },
        { authorization: `Bearer ${PUBLISH_KEY}` },
      );
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        error: { code: ErrorCode.InvalidInput, message: expect.stringContaining(field) },
      });
    }
    // Nested fields of those names are the app's own: only the top level is Tether's.
    await tether.publisher.publish({ user: "fg-alice" }, "note", { inner: { offset: 1, room: "r" } });
    const history = await tether.history({ user: "fg-alice" });
    expect(history.events.map((e) => e.data)).toEqual([{ inner: { offset: 1, room: "r" } }]);
    expect((await tether.history({ room: "fg-room" })).events).toEqual([]);
  });
});

describe("the new settings are bounded", () => {
  it("TETHER_HISTORY_MAX_EVENTS is 1 to 1000 and TETHER_MAX_PRESENCE_BYTES a size; defaults 100 and 1 KB", () => {
    const config = loadConfig({ LOG_LEVEL: "silent" });
    expect(config.history.maxLimit).toBe(100);
    expect(config.maxPresenceBytes).toBe(1024);
    expect(loadConfig({ TETHER_HISTORY_MAX_EVENTS: "1000" }).history.maxLimit).toBe(1000);
    for (const value of ["0", "1001", "-5", "lots", "2.5"])
      expect(() => loadConfig({ TETHER_HISTORY_MAX_EVENTS: value })).toThrow(/TETHER_HISTORY_MAX_EVENTS/);
    expect(loadConfig({ TETHER_MAX_PRESENCE_BYTES: "2kb" }).maxPresenceBytes).toBe(2048);
    for (const value of ["0", "huge"])
      expect(() => loadConfig({ TETHER_MAX_PRESENCE_BYTES: value })).toThrow(/TETHER_MAX_PRESENCE_BYTES/);
  });
});

describe("one error shape", () => {
  it("ErrorCode is exported; retryAfterMs is the wait and retryAfterSeconds its deprecated alias", () => {
    expect(ErrorCode.RateLimited).toBe("RATE_LIMITED");
    const error = new TetherError(ErrorCode.RateLimited);
    expect({ code: error.code, message: error.message, retryAfterMs: error.retryAfterMs }).toEqual({
      code: "RATE_LIMITED",
      message: expect.any(String),
      retryAfterMs: undefined,
    });
    error.retryAfterMs = 1_500;
    expect(error.retryAfterSeconds).toBe(2);
    error.retryAfterSeconds = 3;
    expect(error.retryAfterMs).toBe(3_000);
  });
});
