import { ErrorCode } from "@tether/shared";
import { connectRaw, login, refusal, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "socket-bounds-api-key-0123456789abc";

/**
 * Sockets are bounded per user, not only per session (issue 18): more logins
 * of one user do not multiply what it may hold on an instance. Tested at the bound.
 */
describe("sockets per user on an instance (TETHER_MAX_SOCKETS_PER_USER=3)", () => {
  let redis: TestRedis;
  let server: TestInstance;
  const sockets: WelcomedSocket[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    server = await startInstance({ REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_MAX_SOCKETS_PER_USER: "3" });
  });

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await server?.kill();
    await redis?.close();
  });

  it("three sockets over two logins connect; the fourth, from a third login, is RATE_LIMITED until one leaves", async () => {
    const [first, second, third] = [
      await login(server.url, API_KEY),
      await login(server.url, API_KEY),
      await login(server.url, API_KEY),
    ];
    for (const session of [first, first, second])
      sockets.push(await connectRaw(server.url, { token: await wsToken(server.url, session) }));
    const refused = await refusal(server.url, { token: await wsToken(server.url, third) });
    expect(refused.data).toEqual({ code: ErrorCode.RateLimited, retryable: true });
    sockets.shift()?.close();
    await waitFor("a free slot for the user", async () => {
      const socket = await connectRaw(server.url, { token: await wsToken(server.url, third) }).catch(() => undefined);
      if (socket) sockets.push(socket);
      return socket;
    });
  });
});
