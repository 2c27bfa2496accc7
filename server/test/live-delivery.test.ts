import type { RecoveryPayload } from "@tether/shared";
import { connectRaw, login, type TestSession, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { type RedisProxy, startRedisProxy } from "@tether/testkit/redis-proxy";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublisher, loadConfig, type WorkerPublisher } from "../src/index.js";

const API_KEY = "live-delivery-test-api-key-0123456789";

/**
 * The live path, counted at the raw Socket.IO level (no SDK duplicate filter):
 * a socket that stays connected gets every published event once and in order,
 * or `recovery {recovered:false}`, whatever happens to the fan-out.
 */
describe("live delivery that notices what it missed", () => {
  let redis: TestRedis;
  let proxy: RedisProxy;
  let server: TestInstance;
  let publisher: WorkerPublisher;
  let session: TestSession;
  const sockets: WelcomedSocket[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    // The instance reaches Redis through a proxy that can make its subscriber connection half-open.
    proxy = await startRedisProxy(redis.port);
    const env = { REDIS_URL: proxy.url, TETHER_API_KEY: API_KEY, TETHER_STREAM_CHECK_INTERVAL: "300ms" };
    server = await startInstance(env);
    publisher = await createPublisher(loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent" }));
    session = await login(server.url, API_KEY);
  });

  afterAll(async () => {
    for (const socket of sockets) socket.close();
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

  /** The `seq` of every `tick` the socket received, in order of arrival. */
  const ticks = (socket: WelcomedSocket) =>
    socket.received.filter(([event]) => event === "tick").map(([, payload]) => (payload as { seq: number }).seq);
  const recoveries = (socket: WelcomedSocket) =>
    socket.received.filter(([event]) => event === "recovery").map(([, payload]) => payload as RecoveryPayload);
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  it("the instance's subscriber connection killed while events are published every 5 ms: every event once, in order, no reconnect", async () => {
    const socket = await connect();
    const disconnects: string[] = [];
    socket.on("disconnect", (reason) => disconnects.push(reason));
    const total = 240;
    for (let seq = 1; seq <= total; seq++) {
      await publisher.publish({ user: "admin" }, "tick", { seq });
      if (seq % 60 === 30) await redis.client().client("KILL", "TYPE", "pubsub");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitFor(`${total} ticks`, () => ticks(socket).length >= total, { timeoutMs: 15_000 });
    expect(ticks(socket)).toEqual(range(1, total));
    expect(recoveries(socket)).toEqual([]);
    expect(disconnects).toEqual([]);
  });

  it("a lost last event (nothing after it reveals the gap) arrives by the delivery probe", async () => {
    const socket = await connect();
    await publisher.publish({ user: "admin" }, "tick", { seq: 1 });
    await waitFor("the first tick", () => ticks(socket).length === 1);
    // Every append is published in the same step, so a fan-out message is lost only with its
    // connection: here one Redis dropped while the instance heard nothing (half-open).
    expect(proxy.deafen("tether:sub")).toBe(1);
    const control = redis.client();
    await waitFor("Redis to see the subscriber gone", async () =>
      ((await control.call("CLIENT", "LIST", "TYPE", "pubsub")) as string)
        .split("\n")
        .every((l) => !l.includes("name=tether:sub ")),
    );
    await publisher.publish({ user: "admin" }, "tick", { seq: 2 });
    // Probes every 300 ms: found within about 450 ms, then a reconnect and a re-read.
    await waitFor("the lost tick", () => ticks(socket).length === 2, { timeoutMs: 3_000 });
    expect(ticks(socket)).toEqual([1, 2]);
    expect(recoveries(socket)).toEqual([]);
  });

  it("a stream Redis lost while a socket was live: recovered:false, then the new stream's events", async () => {
    const socket = await connect();
    await publisher.publish({ user: "admin" }, "tick", { seq: 1 });
    await waitFor("the first tick", () => ticks(socket).length === 1);
    await redis.client().del("tether:stream:{user:admin}", "tether:stream-meta:{user:admin}");
    await publisher.publish({ user: "admin" }, "tick", { seq: 2 });
    await waitFor("recovered:false", () => recoveries(socket).length === 1);
    await waitFor("the new stream's tick", () => ticks(socket).length === 2);
    expect(ticks(socket)).toEqual([1, 2]);
    expect(recoveries(socket)[0]).toMatchObject({ recovered: false, reason: "reset" });
  });
});
