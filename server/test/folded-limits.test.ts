import { ErrorCode } from "@tether/shared";
import { nextClientAddress } from "@tether/testkit/address";
import { connectRaw, login, post, refusal, type TestSession, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "folded-limits-test-api-key-0123456789";
const WINDOW_MS = 10_000;

/**
 * On one Redis the token and handshake limits are counted inside the mint and
 * consume scripts (one round trip each). They must refuse exactly as the
 * separate rate-limiter-flexible calls did: same counts, same keys and windows,
 * RATE_LIMITED with a retry hint, and a credential spent by a refused handshake.
 */
describe("token and handshake limits counted in the auth scripts", () => {
  let redis: TestRedis;
  let server: TestInstance;

  beforeAll(async () => {
    redis = await startRedis();
    server = await startInstance({
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_RATE_LIMIT_WS_TOKEN: "3/10s",
      TETHER_RATE_LIMIT_HANDSHAKE_IP: "3/10s",
      TETHER_RATE_LIMIT_HANDSHAKE_SESSION: "2/10s",
    });
  });

  afterAll(async () => {
    await server?.kill();
    await redis?.close();
  });

  const tokenRequest = (session: TestSession) =>
    post(`${server.url}/api/auth/ws-token`, undefined, { cookie: session.cookie });

  it("a session's 4th token in the window is 429 with Retry-After; another session is not affected", async () => {
    const session = await login(server.url, API_KEY);
    for (let i = 0; i < 3; i++) expect((await tokenRequest(session)).status).toBe(200);
    const over = await tokenRequest(session);
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ error: { code: ErrorCode.RateLimited } });
    const retryAfter = Number(over.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(WINDOW_MS / 1000);
    expect((await tokenRequest(await login(server.url, API_KEY))).status).toBe(200);
    // rate-limiter-flexible's key layout and fixed window: the count of every request, the window from the first.
    const probe = redis.client();
    const counts = [];
    for (const key of await probe.keys("tether:rl:token:*")) {
      counts.push(Number(await probe.get(key)));
      const ttl = await probe.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(WINDOW_MS);
    }
    expect(counts.sort()).toEqual([1, 4]);
  });

  it("the 4th handshake from one address is RATE_LIMITED (retryable) and spends its token; another address connects", async () => {
    const from = nextClientAddress();
    const sessions = [await login(server.url, API_KEY), await login(server.url, API_KEY)];
    const sockets = [];
    for (let i = 0; i < 3; i++) {
      const token = await wsToken(server.url, sessions[i % 2] as TestSession);
      sockets.push(await connectRaw(server.url, { token }, { localAddress: from }));
    }
    const token = await wsToken(server.url, sessions[1] as TestSession);
    const refused = await refusal(server.url, { token }, { localAddress: from });
    expect(refused.data).toMatchObject({ code: ErrorCode.RateLimited, retryable: true });
    // As before the limit was folded in: a handshake refused by the limit still used its token up.
    expect((await refusal(server.url, { token })).data?.code).toBe(ErrorCode.TokenInvalid);
    const other = await connectRaw(server.url, { token: await wsToken(server.url, sessions[1] as TestSession) });
    for (const socket of [...sockets, other]) socket.close();
  });

  it("resume tickets count against the session's handshake limit: the 3rd in the window is RATE_LIMITED", async () => {
    const session = await login(server.url, API_KEY);
    // A token handshake is not charged to the session (its token was).
    let socket = await connectRaw(server.url, { token: await wsToken(server.url, session) });
    for (let i = 0; i < 2; i++) {
      const ticket = socket.welcome.ticket;
      socket.close();
      socket = await connectRaw(server.url, { ticket });
    }
    const ticket = socket.welcome.ticket;
    socket.close();
    expect((await refusal(server.url, { ticket })).data).toMatchObject({
      code: ErrorCode.RateLimited,
      retryable: true,
    });
  });
});
