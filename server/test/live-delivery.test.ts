import type { RecoveryPayload } from "@tether/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublisher, loadConfig, type WorkerPublisher } from "../src/index.js";
import { connectRaw, login, type TestSession, type WelcomedSocket, wsToken } from "./helpers/http.js";
import { startInstance, type TestInstance } from "./helpers/instance.js";
import { startRedis, type TestRedis } from "./helpers/redis.js";
import { waitFor } from "./helpers/wait.js";

const API_KEY = "live-delivery-test-api-key-0123456789";

/**
 * The live path, counted at the raw Socket.IO level (no SDK duplicate filter):
 * a socket that stays connected gets every published event once and in order,
 * or `recovery {recovered:false}`, whatever happens to the fan-out.
 */
describe("live delivery that notices what it missed", () => {
  let redis: TestRedis;
  let server: TestInstance;
  let publisher: WorkerPublisher;
  let session: TestSession;
  const sockets: WelcomedSocket[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const env = { REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_STREAM_CHECK_INTERVAL: "300ms" };
    server = await startInstance(env);
    publisher = await createPublisher(loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent" }));
    session = await login(server.url, API_KEY);
  });

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await publisher?.close();
    await server?.kill();
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

  it("a lost last event (nothing after it reveals the gap) arrives by the periodic head check", async () => {
    const socket = await connect();
    await publisher.publish({ user: "admin" }, "tick", { seq: 1 });
    await waitFor("the first tick", () => ticks(socket).length === 1);
    // An append whose fan-out message is lost: the stream has it, no instance heard of it.
    const meta = await redis.client().hgetall("tether:stream-meta:{user:admin}");
    const id = `${Number(meta.last?.split("-")[0]) + 1}-0`;
    await redis.client().xadd("tether:stream:{user:admin}", id, "e", "tick", "d", JSON.stringify({ seq: 2 }));
    await redis.client().hset("tether:stream-meta:{user:admin}", "last", id);
    await waitFor("the lost tick", () => ticks(socket).length === 2, { timeoutMs: 5_000 });
    expect(ticks(socket)).toEqual([1, 2]);
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
