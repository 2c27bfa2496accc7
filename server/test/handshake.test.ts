import { ErrorCode } from "@tether/shared";
import { connectRaw, login, post, refusal, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { nextEvent, waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "handshake-test-api-key-0123456789";

describe("logins and WS tokens shared through Redis by two instances", () => {
  let redis: TestRedis;
  let a: TestInstance;
  let b: TestInstance;

  beforeAll(async () => {
    redis = await startRedis();
    // Short, for the expiry test (which waits for it), but longer than a loaded machine may take between
    // minting a token and presenting it: every other test here presents its token once, right away.
    const env = { REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_WS_TOKEN_TTL: "3s" };
    [a, b] = await Promise.all([startInstance(env), startInstance(env)]);
  });

  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.close();
  });

  it("a token minted on A connects on B, and B welcomes the socket with its instance id", async () => {
    const session = await login(a.url, API_KEY);
    const socket = await connectRaw(b.url, { token: await wsToken(a.url, session) });
    const { welcome } = socket;
    expect(welcome.instance).toMatch(/^test-/);
    expect(typeof welcome.offset).toBe("string");
    expect(await socket.emitWithAck("echo", { hello: "B" })).toEqual({ hello: "B" });
    socket.close();
  });

  it("a token works once: the second handshake gets a retryable TOKEN_INVALID", async () => {
    const session = await login(a.url, API_KEY);
    const token = await wsToken(a.url, session);
    (await connectRaw(b.url, { token })).close();
    const second = await refusal(a.url, { token });
    expect(second.message).toBe(ErrorCode.TokenInvalid);
    expect(second.data).toEqual({ code: ErrorCode.TokenInvalid, retryable: true });
  });

  it("an expired token is refused with TOKEN_INVALID", async () => {
    const session = await login(a.url, API_KEY);
    const token = await wsToken(a.url, session);
    const probe = redis.client();
    await waitFor("the token to expire in Redis", async () => (await probe.exists(`tether:wstok:${token}`)) === 0);
    expect((await refusal(b.url, { token })).data?.code).toBe(ErrorCode.TokenInvalid);
  });

  it("a token of a logged-out session is refused with SESSION_EXPIRED, which is not retryable", async () => {
    const session = await login(a.url, API_KEY);
    const token = await wsToken(a.url, session);
    expect((await post(`${b.url}/api/auth/logout`, undefined, { cookie: session.cookie })).status).toBe(204);
    const refused = await refusal(a.url, { token });
    expect(refused.data).toEqual({ code: ErrorCode.SessionExpired, retryable: false });
    const again = await post(`${a.url}/api/auth/ws-token`, undefined, { cookie: session.cookie });
    expect(again.status).toBe(401);
    expect(again.body).toMatchObject({ error: { code: ErrorCode.SessionRequired } });
  });

  it("logout through A ends the session's socket on B with session:ended, then disconnects it", async () => {
    const session = await login(a.url, API_KEY);
    const socket = await connectRaw(b.url, { token: await wsToken(a.url, session) });
    const ended = nextEvent<{ reason: string }>(socket, "session:ended");
    const disconnected = nextEvent<string>(socket, "disconnect");
    await post(`${a.url}/api/auth/logout`, undefined, { cookie: session.cookie });
    expect(await ended).toEqual({ reason: "logout" });
    expect(await disconnected).toBe("io server disconnect");
  });

  it("logout ends only that session: another session of the same user stays connected", async () => {
    const [first, second] = [await login(a.url, API_KEY), await login(a.url, API_KEY)];
    const keep = await connectRaw(b.url, { token: await wsToken(b.url, second) });
    await post(`${a.url}/api/auth/logout`, undefined, { cookie: first.cookie });
    expect(await keep.emitWithAck("echo", "still here")).toBe("still here");
    keep.close();
  });

  it("refuses tokens of the wrong shape with TOKEN_INVALID and keeps serving", async () => {
    for (const auth of [
      {},
      { token: "" },
      { token: 42 },
      { token: ["x"] },
      { token: { a: 1 } },
      { token: "x".repeat(43) },
      { token: "a".repeat(10_000) },
    ]) {
      expect((await refusal(b.url, auth)).data?.code).toBe(ErrorCode.TokenInvalid);
    }
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200);
  });

  it("GET /api/auth/session reports the session and when it expires", async () => {
    const session = await login(a.url, API_KEY);
    const res = await fetch(`${b.url}/api/auth/session`, { headers: { cookie: session.cookie } });
    const body = (await res.json()) as { authenticated: boolean; expiresAt: number };
    expect(body.authenticated).toBe(true);
    expect(body.expiresAt).toBeGreaterThan(Date.now());
    const anonymous = await fetch(`${b.url}/api/auth/session`);
    expect(anonymous.status).toBe(401);
  });
});
