import { createTetherClient, type TetherClientError } from "@tether/client";
import { ErrorCode, type SessionEndedPayload, SessionEndReason } from "@tether/shared";
import { startClient, type TestClient } from "@tether/testkit/client";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { nextEvent, waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostSessionId } from "../src/auth/keys.js";
import { type HostApp, type HostSession, startHost } from "./fixtures/host-login-app.js";

const COMMAND_TIMEOUT_MS = 500;
const MAX_AGE_MS = 2_000;
const DAY_MS = 24 * 3_600_000;

/**
 * `tether.tokenRouteFor` (the host's token route, ready made) and the client's `tokenUrl`,
 * on a real server, Redis and client: the host's sign-in is its own cookie, and the client
 * POSTs to the host's route with it.
 */
describe("tether.tokenRouteFor and the client's tokenUrl (Redis)", () => {
  let redis: TestRedis;
  let app: HostApp;
  /** TETHER_SESSION_MAX_AGE of 2 s: the cap without `expiresAt`. */
  let short: HostApp;
  const sessions = new Map<string, HostSession>();
  const opened: TestClient[] = [];

  /** A client of the host's page: signed in at the host (its cookie in the client's jar), tokens from `tokenUrl`. */
  async function signedIn(host: HostApp, tokenUrl = "/my/token"): Promise<TestClient & { bearer: string }> {
    const t = startClient(host.url, { tokenUrl });
    opened.push(t);
    const res = await t.post("/my/login", { username: "alice", password: "wonderland" });
    expect(res.status).toBe(200);
    return { ...t, bearer: ((await res.json()) as { bearer: string }).bearer };
  }

  const errorsOf = (t: TestClient) => {
    const errors: TetherClientError[] = [];
    t.client.on("error", (err) => errors.push(err));
    return errors;
  };

  beforeAll(async () => {
    redis = await startRedis();
    app = await startHost(sessions, { REDIS_URL: redis.url, TETHER_REDIS_COMMAND_TIMEOUT: `${COMMAND_TIMEOUT_MS}ms` });
    short = await startHost(sessions, {
      REDIS_URL: redis.url,
      TETHER_SESSION_MAX_AGE: `${MAX_AGE_MS}ms`,
      TETHER_SESSION_IDLE_TTL: `${MAX_AGE_MS}ms`,
    });
  });
  afterAll(async () => {
    for (const t of opened) t.client.close();
    await app?.close();
    await short?.close();
    await redis?.close();
  });

  it("the route mints a token the client connects with (tokenUrl), and connect() returns the client", async () => {
    // The fixture's host passes `server` to createTether: attached already.
    expect(() => app.tether.attach(app.http)).toThrow("already attached");
    const t = await signedIn(app);
    expect(t.client.connect()).toBe(t.client);
    await t.welcomed(1);
    const published = nextEvent<{ jobId: string }>(t.client, "job:done");
    await app.tether.publisher.publish({ user: "alice" }, "job:done", { jobId: "via-token-url" });
    expect(await published).toMatchObject({ jobId: "via-token-url" });
    // Tether's own token route was never asked (there is no Tether cookie to ask it with).
    expect(t.tokens).toEqual([]);
    const res = await t.post("/my/token");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toEqual({ token: expect.any(String), expiresAt: expect.any(Number) });
  });

  it("getToken and tokenUrl together are refused when the client is made", () => {
    const both = () =>
      createTetherClient({ url: app.url, tokenUrl: "/my/token", getToken: async () => ({ token: "t" }) });
    expect(both).toThrow(TypeError);
    expect(both).toThrow("give `getToken` or `tokenUrl`, not both");
  });

  it("a refused grant is 401 SESSION_REQUIRED, the host's own 401 is UNAUTHORIZED: the client stops either way", async () => {
    const res = await fetch(`${app.url}/my/token`, { method: "POST" });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: { code: ErrorCode.SessionRequired, message: expect.any(String) } });

    const refused = startClient(app.url, { tokenUrl: "/my/token" });
    const guarded = startClient(app.url, { tokenUrl: "/my/guarded-token" });
    opened.push(refused, guarded);
    const [refusedErrors, guardedErrors] = [errorsOf(refused), errorsOf(guarded)];
    refused.client.connect();
    guarded.client.connect();
    await refused.waitForState("unauthenticated");
    await guarded.waitForState("unauthenticated");
    expect(refusedErrors.map((err) => [err.code, err.status])).toEqual([[ErrorCode.SessionRequired, 401]]);
    expect(guardedErrors.map((err) => [err.code, err.status])).toEqual([["UNAUTHORIZED", 401]]);
  });

  it("a grant without expiresAt is capped at the max age after the key's first grant, and endSession ends it", async () => {
    const t = await signedIn(app);
    const firstGrant = Date.now();
    t.client.connect();
    await t.welcomed(1);
    const { sessionId } = sessions.get(t.bearer) as HostSession;
    const record = await redis.client().hgetall(`tether:host:${hostSessionId(sessionId)}`);
    expect(Number(record.maxAt) - firstGrant).toBeGreaterThanOrEqual(30 * DAY_MS);
    expect(Number(record.maxAt) - Date.now()).toBeLessThanOrEqual(30 * DAY_MS);

    const ended = nextEvent<SessionEndedPayload>(t.client, "session:ended");
    await app.tether.endSession(sessionId);
    expect(await ended).toEqual({ reason: SessionEndReason.Logout });
    await t.waitForState("unauthenticated");
    const again = await t.post("/my/token");
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ error: { code: ErrorCode.SessionRequired } });
  });

  it("without expiresAt, a short TETHER_SESSION_MAX_AGE ends the session at its cap: session:ended {expired}", async () => {
    const t = await signedIn(short);
    const firstGrant = Date.now();
    t.client.connect();
    await t.welcomed(1);
    const ended = await nextEvent<SessionEndedPayload>(t.client, "session:ended", 3 * MAX_AGE_MS);
    expect(ended).toEqual({ reason: SessionEndReason.Expired });
    expect(Date.now()).toBeGreaterThanOrEqual(firstGrant + MAX_AGE_MS);
    await t.waitForState("unauthenticated");
    // Later grants never move the cap: the key stays expired.
    const again = await t.post("/my/token");
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ error: { code: ErrorCode.SessionRequired } });
  });

  it("hostile grants (one throws, one is of the wrong type), repeated: typed 500 INTERNAL, no stack trace; a bystander keeps its socket", async () => {
    const bystander = await signedIn(app);
    bystander.client.connect();
    await bystander.welcomed(1);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        fetch(`${app.url}/my/${i % 2 === 0 ? "broken" : "wrong"}-token`, { method: "POST" }),
      ),
    );
    for (const res of answers) {
      expect(res.status).toBe(500);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({ error: { code: ErrorCode.Internal, message: expect.any(String) } });
      expect(text).not.toMatch(/database|\/srv\/|TypeError|at |issueTokenFor/);
    }
    expect(() => app.tether.tokenRouteFor(42 as never)).toThrow(TypeError);
    // A token URL whose answer has no usable token: retried as a bad response, never a crash.
    const confused = startClient(app.url, { tokenUrl: "/my/bad-body" });
    opened.push(confused);
    const confusedErrors = errorsOf(confused);
    confused.client.connect();
    await waitFor("two bad responses", () => confusedErrors.filter((err) => err.code === "BAD_RESPONSE").length >= 2);
    expect(confused.client.state).toBe("connecting");
    confused.client.close();
    expect(await bystander.client.echo("still here")).toBe("still here");
    expect(bystander.client.state).toBe("connected");
    expect(bystander.welcomes).toHaveLength(1);
  });

  // Last: it stops Redis.
  it("Redis down: the route answers UNAVAILABLE quickly, the client retries, and connects once Redis is back", async () => {
    const waiting = await signedIn(app);
    const errors = errorsOf(waiting);
    await redis.stop();
    const started = Date.now();
    const res = await waiting.post("/my/token");
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: { code: ErrorCode.Unavailable } });
    expect(Date.now() - started).toBeLessThan(4 * COMMAND_TIMEOUT_MS + 1_000);

    waiting.client.connect();
    await waitFor("the token route refused as unavailable", () =>
      errors.some((err) => err.code === ErrorCode.Unavailable && err.status === 503),
    );
    expect(waiting.client.state).toBe("connecting");
    await redis.start();
    await waiting.welcomed(1);
    expect(waiting.states).not.toContain("unauthenticated");
  });
});
