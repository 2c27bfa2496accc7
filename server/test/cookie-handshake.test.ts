import { ErrorCode } from "@tether/shared";
import { connectRaw, login, post, refusal, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { metricSum } from "@tether/testkit/metrics";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "cookie-handshake-test-api-key-0123456789";
/** Cookie handshakes per session: small, so the bound is reached in a few handshakes. */
const SESSION_HANDSHAKES = 6;

/** One Prometheus series' value (0 when absent). */
const metric = (url: string, series: string) => metricSum(url, `${series} `);

const COOKIE_HANDSHAKES = 'tether_ws_tokens_total{result="cookie"}';
const TOKENS_ISSUED = 'tether_ws_tokens_total{result="issued"}';

/** The session id in a `tether.sid=s%3A<sid>.<signature>` cookie. */
function sidOf(cookie: string): string {
  return decodeURIComponent(cookie.slice(cookie.indexOf("=") + 1))
    .slice(2)
    .split(".")[0] as string;
}

/**
 * A first connect signed in by the session cookie its handshake carries (`auth.cookie`):
 * no token request before it, and no weaker than one.
 */
describe("handshake by session cookie", () => {
  let redis: TestRedis;
  let a: TestInstance;
  let bystander: WelcomedSocket;
  const sockets: WelcomedSocket[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    a = await startInstance({
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_RATE_LIMIT_HANDSHAKE_SESSION: `${SESSION_HANDSHAKES}/1m`,
    });
    const other = await login(a.url, API_KEY);
    bystander = await connectRaw(a.url, { token: await wsToken(a.url, other) });
  });

  afterAll(async () => {
    for (const socket of [...sockets, bystander]) socket?.close();
    await a?.kill();
    await redis?.close();
  });

  const byCookie = async (cookie: string, auth: Record<string, unknown> = {}) => {
    const socket = await connectRaw(a.url, { cookie: true, ...auth }, { extraHeaders: { cookie } });
    sockets.push(socket);
    return socket;
  };

  it("connects with no token request, counted as a cookie handshake, and renews the session's idle TTL", async () => {
    const session = await login(a.url, API_KEY);
    const sessionKey = `tether:sess:${sidOf(session.cookie)}`;
    await redis.client().pexpire(sessionKey, 5_000);
    const [issued, cookies] = [await metric(a.url, TOKENS_ISSUED), await metric(a.url, COOKIE_HANDSHAKES)];

    const socket = await byCookie(session.cookie);
    expect(socket.welcome.instance).toEqual(expect.any(String));
    // A resume ticket for the next handshake, as after a token handshake.
    expect(socket.welcome.ticket).toEqual(expect.any(String));
    expect(await socket.emitWithAck("echo", "hi")).toBe("hi");
    expect(await metric(a.url, COOKIE_HANDSHAKES)).toBe(cookies + 1);
    expect(await metric(a.url, TOKENS_ISSUED)).toBe(issued);
    // A connect is activity: the idle TTL starts again (the default is far above 5 s).
    expect(await redis.client().pttl(sessionKey)).toBeGreaterThan(60_000);
  });

  it("a logout reaches a socket signed in by cookie, and the cookie no longer signs anyone in", async () => {
    const session = await login(a.url, API_KEY);
    const socket = await byCookie(session.cookie);
    const ended = new Promise((resolve) => socket.once("session:ended", resolve));
    expect((await post(`${a.url}/api/auth/logout`, undefined, { cookie: session.cookie })).status).toBe(204);
    expect(await ended).toEqual({ reason: "logout" });
    // Refused as a cookie that signs no one in: the client asks the token route, which says "log in".
    const refused = await refusal(a.url, { cookie: true }, { extraHeaders: { cookie: session.cookie } });
    expect(refused.data).toEqual({ code: ErrorCode.TokenInvalid, retryable: true });
    expect((await post(`${a.url}/api/auth/ws-token`, undefined, { cookie: session.cookie })).status).toBe(401);
  });

  it("no cookie, a cookie not signed by us, another cookie's name, a wrong-typed flag: TOKEN_INVALID, retryable; the bystander keeps its socket", async () => {
    const session = await login(a.url, API_KEY);
    const [name, value] = session.cookie.split("=") as [string, string];
    const forged = `${name}=${encodeURIComponent(`s:${sidOf(session.cookie)}.${"A".repeat(43)}`)}`;
    const cases: [auth: Record<string, unknown>, cookie: string | undefined][] = [
      [{ cookie: true }, undefined],
      [{ cookie: true }, forged],
      [{ cookie: true }, `${name}=${encodeURIComponent(`${sidOf(session.cookie)}`)}`],
      [{ cookie: true }, `other.sid=${value}`],
      [{ cookie: "true" }, session.cookie],
      [{ cookie: 1 }, session.cookie],
      [{ cookie: { $ne: null } }, session.cookie],
      [{ cookie: true }, `${name}=${"x".repeat(4_000)}`],
    ];
    const cookies = await metric(a.url, COOKIE_HANDSHAKES);
    for (const [auth, cookie] of cases) {
      const refused = await refusal(a.url, auth, cookie === undefined ? {} : { extraHeaders: { cookie } });
      expect(refused.data, JSON.stringify(auth)).toEqual({ code: ErrorCode.TokenInvalid, retryable: true });
    }
    expect(await metric(a.url, COOKIE_HANDSHAKES)).toBe(cookies);
    expect(bystander.connected).toBe(true);
    expect(await bystander.emitWithAck("echo", 1)).toBe(1);
  });

  it("a token beside the flag is a token handshake: spent as one, the cookie unused", async () => {
    const session = await login(a.url, API_KEY);
    const [cookies, consumed] = [
      await metric(a.url, COOKIE_HANDSHAKES),
      await metric(a.url, 'tether_ws_tokens_total{result="consumed"}'),
    ];
    await byCookie(session.cookie, { token: await wsToken(a.url, session) });
    expect(await metric(a.url, COOKIE_HANDSHAKES)).toBe(cookies);
    expect(await metric(a.url, 'tether_ws_tokens_total{result="consumed"}')).toBe(consumed + 1);
  });

  it("another site's page never gets a socket with the user's cookie (cross-site WebSocket hijacking)", async () => {
    const session = await login(a.url, API_KEY);
    const cookies = await metric(a.url, COOKIE_HANDSHAKES);
    for (const origin of ["https://evil.example", "null"]) {
      const refused = await refusal(a.url, { cookie: true }, { extraHeaders: { cookie: session.cookie, origin } });
      // The Engine.IO request itself is refused: no Socket.IO session, no connect_error data.
      expect(refused.data).toBeUndefined();
    }
    // A browser that sends no Origin says where the request comes from instead.
    const noOrigin = await refusal(
      a.url,
      { cookie: true },
      { extraHeaders: { cookie: session.cookie, "sec-fetch-site": "cross-site" } },
    );
    expect(noOrigin.data).toBeUndefined();
    expect(await metric(a.url, COOKIE_HANDSHAKES)).toBe(cookies);
    expect(bystander.connected).toBe(true);
  });

  it(`at most ${SESSION_HANDSHAKES} cookie handshakes per session per window: then RATE_LIMITED (retryable, with backoff), other sessions unaffected`, async () => {
    const session = await login(a.url, API_KEY);
    for (let i = 0; i < SESSION_HANDSHAKES; i++) (await byCookie(session.cookie)).close();
    const refused = await refusal(a.url, { cookie: true }, { extraHeaders: { cookie: session.cookie } });
    expect(refused.data).toEqual({ code: ErrorCode.RateLimited, retryable: true });
    // Another session of the same user is another budget.
    const other = await login(a.url, API_KEY);
    await byCookie(other.cookie);
    await waitFor("the bystander to answer", async () => (await bystander.emitWithAck("echo", 2)) === 2);
  });
});
