import { resolve } from "node:path";
import { connectRaw, login, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "subscription-faults-api-key-0123456";
const HOST = resolve(import.meta.dirname, "../fixtures/hostile-host.ts");

/**
 * A Redis that does not answer a pub/sub (un)subscribe must not end the
 * instance (found by the chaos suite: a frozen instance whose subscriber Redis
 * dropped crashed on the Socket.IO adapter's SUNSUBSCRIBE, which nothing
 * caught). Here Redis is paused past the command timeout while a socket leaves
 * a room, so the adapter's SUNSUBSCRIBE times out.
 */
describe("the Socket.IO adapter's subscriptions failing", () => {
  let redis: TestRedis;
  let server: TestInstance;
  let bystander: WelcomedSocket;

  beforeAll(async () => {
    redis = await startRedis();
    server = await startInstance(
      { REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_REDIS_COMMAND_TIMEOUT: "300ms" },
      { main: HOST },
    );
    bystander = await connectRaw(server.url, { token: await wsToken(server.url, await login(server.url, API_KEY)) });
  });

  afterAll(async () => {
    bystander?.close();
    await server?.kill();
    await redis?.close();
  });

  it("a room left while Redis does not answer: the unsubscribe fails, the instance lives and serves once Redis is back", async () => {
    const socket = await connectRaw(server.url, { token: await wsToken(server.url, await login(server.url, API_KEY)) });
    try {
      for (let round = 0; round < 3; round++) {
        const room = `quiet-${round}`;
        expect(await socket.timeout(5_000).emitWithAck("room:join", { room })).toMatchObject({ ok: true });
        const admin = redis.client();
        await admin.call("CLIENT", "PAUSE", "1200", "ALL");
        const leaving = socket
          .timeout(5_000)
          .emitWithAck("room:leave", { room })
          .catch(() => undefined);
        await waitFor("Redis to answer again", async () => (await redis.client().ping()) === "PONG", {
          timeoutMs: 10_000,
        });
        await leaving;
      }
      expect(server.process.exitCode).toBeNull();
      await waitFor("the bystander's echo", async () => (await bystander.timeout(2_000).emitWithAck("echo", 1)) === 1);
      expect(await socket.timeout(5_000).emitWithAck("room:join", { room: "after" })).toMatchObject({ ok: true });
    } finally {
      socket.close();
    }
  });
});
