import { ErrorCode } from "@tether/shared";
import { connectRaw, login, refusal, type TestSession, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { metricSum } from "@tether/testkit/metrics";
import { openRaw } from "@tether/testkit/raw";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "handshake-lifetime-api-key-0123456789";
const MAX_SOCKETS = 2;

describe("a session's slots on an instance outlive no handshake", () => {
  let redis: TestRedis;
  let control: Redis;
  let server: TestInstance;
  let session: TestSession;

  beforeAll(async () => {
    redis = await startRedis();
    control = redis.client();
    server = await startInstance({
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_MAX_SOCKETS_PER_SESSION: String(MAX_SOCKETS),
      // Redis is paused on purpose below; the handshake must wait for it, not time out.
      TETHER_REDIS_COMMAND_TIMEOUT: "20s",
    });
    session = await login(server.url, API_KEY);
  });

  afterAll(async () => {
    await control?.client("UNPAUSE").catch(() => undefined);
    await server?.kill();
    await redis?.close();
  });

  it("clients that leave mid-handshake (more than the per-session limit) do not lock the session out", async () => {
    const handshakes = "tether_handshakes_total{";
    for (let round = 1; round <= MAX_SOCKETS + 2; round++) {
      const token = await wsToken(server.url, session);
      const raw = await openRaw(server.url);
      const before = await metricSum(server.url, handshakes);
      // Writes (the token's GETDEL script) wait while Redis is paused: the handshake is in flight.
      await control.client("PAUSE", 60_000, "WRITE");
      raw.send(`40${JSON.stringify({ token })}`);
      await waitFor("the token consume waiting on Redis", async () => {
        const info = await control.info("clients");
        return /blocked_clients:[1-9]/.test(info);
      });
      // The page reloads: its connection is gone before the handshake ends.
      raw.close();
      await waitFor("the instance to see the connection close", async () => {
        return (await metricSum(server.url, "tether_connected_sockets ")) === 0;
      });
      await control.client("UNPAUSE");
      // The handshake completes after its client has left: Socket.IO drops the socket, no "disconnect".
      await waitFor("the handshake to finish", async () => (await metricSum(server.url, handshakes)) === before + 1);
    }
    const sockets = [];
    for (let i = 0; i < MAX_SOCKETS; i++)
      sockets.push(await connectRaw(server.url, { token: await wsToken(server.url, session) }));
    expect(sockets.every((s) => s.connected)).toBe(true);
    // The limit itself still holds.
    expect((await refusal(server.url, { token: await wsToken(server.url, session) })).data?.code).toBe(
      ErrorCode.RateLimited,
    );
    for (const s of sockets) s.close();
    // And disconnects free their slots.
    await waitFor("the slots freed by disconnect", async () => {
      const again = await connectRaw(server.url, { token: await wsToken(server.url, session) });
      again.close();
      return true;
    });
  });

  it("refused handshakes (over the limit) keep no slot: after disconnects the session connects again", async () => {
    const session = await login(server.url, API_KEY);
    const sockets = [];
    for (let i = 0; i < MAX_SOCKETS; i++)
      sockets.push(await connectRaw(server.url, { token: await wsToken(server.url, session) }));
    for (let i = 0; i < 3; i++)
      expect((await refusal(server.url, { token: await wsToken(server.url, session) })).data?.code).toBe(
        ErrorCode.RateLimited,
      );
    for (const s of sockets) s.close();
    await waitFor("both slots freed", async () => {
      const again = [
        await connectRaw(server.url, { token: await wsToken(server.url, session) }),
        await connectRaw(server.url, { token: await wsToken(server.url, session) }),
      ];
      for (const s of again) s.close();
      return true;
    });
  });
});
