import { ErrorCode, isPublishableEventName, OFFSET_PATTERN, RESERVED_EVENT_NAMES } from "@tether/shared";
import { connectRaw, login, post, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { nextEvent } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createPublisher,
  createTether,
  loadConfig,
  type Tether,
  TetherError,
  type WorkerPublisher,
} from "../src/index.js";

const API_KEY = "event-names-test-api-key-0123456789";
const PUBLISH_KEY = "event-names-test-publish-key-0123456789";

describe("reserved event names are refused at every publish entry", () => {
  let redis: TestRedis;
  let server: TestInstance;
  let worker: WorkerPublisher;
  let embedded: Tether;
  let socket: WelcomedSocket;

  beforeAll(async () => {
    redis = await startRedis();
    server = await startInstance({ REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_PUBLISH_KEY: PUBLISH_KEY });
    worker = await createPublisher(loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent" }));
    embedded = await createTether({ config: loadConfig({ LOG_LEVEL: "silent" }) });
    socket = await connectRaw(server.url, { token: await wsToken(server.url, await login(server.url, API_KEY)) });
  });

  afterAll(async () => {
    socket?.close();
    await worker?.close();
    await embedded?.close();
    await server?.kill();
    await redis?.close();
  });

  it("the rule in @tether/shared covers Socket.IO's, Tether's and the client's own names", () => {
    for (const name of ["newListener", "removeListener", "connect", "disconnect", "error", "welcome", "session:ended"])
      expect(isPublishableEventName(name)).toBe(false);
    expect(isPublishableEventName("")).toBe(false);
    expect(isPublishableEventName("x".repeat(129))).toBe(false);
    expect(isPublishableEventName("build:log")).toBe(true);
    expect(isPublishableEventName("job:done")).toBe(true);
  });

  it("newListener through POST /api/publish: 400 INVALID_INPUT, and the instance and its sockets stay up", async () => {
    const headers = { authorization: `Bearer ${PUBLISH_KEY}` };
    // newListener first: before the rule it was accepted, and Socket.IO then threw in the Redis handler.
    for (const event of ["newListener", "removeListener", ...RESERVED_EVENT_NAMES]) {
      const res = await post(`${server.url}/api/publish`, { target: { user: "admin" }, event, data: {} }, headers);
      expect([event, res.status, (res.body?.error as { code?: string })?.code]).toEqual([
        event,
        400,
        ErrorCode.InvalidInput,
      ]);
    }
    // Still serving, the socket still connected, and a legitimate event still delivered.
    expect(server.process.exitCode).toBeNull();
    expect(await socket.timeout(5_000).emitWithAck("echo", "ok")).toBe("ok");
    const got = nextEvent(socket, "build:log");
    const ok = await post(
      `${server.url}/api/publish`,
      { target: { user: "admin" }, event: "build:log", data: {} },
      headers,
    );
    expect(ok.status).toBe(202);
    expect(await got).toEqual({ offset: ok.body?.offset });
  });

  it("newListener through a worker's createPublisher: a typed INVALID_INPUT error, nothing appended", async () => {
    for (const event of RESERVED_EVENT_NAMES) {
      const refused = await worker.publish({ user: "admin" }, event, {}).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(TetherError);
      expect((refused as TetherError).code).toBe(ErrorCode.InvalidInput);
    }
    const got = nextEvent(socket, "build:log");
    const offset = await worker.publish({ user: "admin" }, "build:log", { from: "worker" });
    // The next event the socket sees is this one: no reserved one reached the stream before it.
    expect(await got).toEqual({ from: "worker", offset });
    expect(server.process.exitCode).toBeNull();
  });

  it("newListener through the in-process publisher (createTether): a typed INVALID_INPUT error", async () => {
    for (const event of RESERVED_EVENT_NAMES) {
      const refused = await embedded.publisher.publish({ user: "admin" }, event, {}).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(TetherError);
      expect((refused as TetherError).code).toBe(ErrorCode.InvalidInput);
    }
    await expect(embedded.publisher.publish({ user: "admin" }, "build:log", {})).resolves.toMatch(OFFSET_PATTERN);
  });
});
