import { TetherClientError } from "@tether/client";
import { ErrorCode, type SessionEndedPayload, SessionEndReason } from "@tether/shared";
import { fetchFrom, nextClientAddress } from "@tether/testkit/address";
import { startClient, type TestClient } from "@tether/testkit/client";
import { refusal } from "@tether/testkit/http";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { idleFor, nextEvent, waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HostApp, type HostSession, hostLogin, startHost } from "./fixtures/host-login-app.js";

/**
 * Refusals a loaded machine may cause and the client rightly retries with a fresh token: the store
 * or the instance busy, a limit's window. A refused ticket (TOKEN_INVALID) is none of them.
 */
const BUSY = new Set<string>([ErrorCode.Unavailable, ErrorCode.RateLimited]);

/**
 * A client whose tokens come from the host's route (bearer auth); records every call and Set-Cookie,
 * and every attempt that was turned away busy (a token route that failed, a handshake refused as
 * busy): each of those costs the next attempt a token of its own.
 */
function hostTokenClient(
  app: HostApp,
  bearer: string,
  opened: TestClient[],
  options: { resumeTickets?: boolean } = {},
) {
  const address = nextClientAddress();
  const hostFetch = fetchFrom(address);
  const calls: number[] = [];
  const setCookies: string[] = [];
  const busy: string[] = [];
  const t = startClient(app.url, {
    ...options,
    address,
    // Never used: a host-token client talks to Tether's HTTP routes not at all.
    fetch: () => Promise.reject(new Error("the client called a Tether HTTP route")),
    getToken: async () => {
      calls.push(Date.now());
      const res = await hostFetch(`${app.url}/my/tether-token`, { headers: { authorization: `Bearer ${bearer}` } });
      const cookie = res.headers.get("set-cookie");
      if (cookie) setCookies.push(cookie);
      if (res.status === 429 || res.status >= 500) busy.push(`token route ${res.status}`);
      if (!res.ok) throw Object.assign(new Error(`token route: ${res.status}`), { status: res.status });
      return (await res.json()) as { token: string; expiresAt: number };
    },
  });
  // A handshake refusal has no HTTP status.
  t.client.on("error", (err) => {
    if (err.status === undefined && BUSY.has(err.code)) busy.push(`handshake ${err.code}`);
  });
  opened.push(t);
  return { ...t, calls, setCookies, busy };
}

describe("a host app's own login and host-issued tokens (Redis, two instances)", () => {
  let redis: TestRedis;
  let a: HostApp;
  let b: HostApp;
  const sessions = new Map<string, HostSession>();
  const opened: TestClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    a = await startHost(sessions, { REDIS_URL: redis.url });
    b = await startHost(sessions, { REDIS_URL: redis.url });
  });
  afterAll(async () => {
    for (const t of opened) t.client.close();
    await a?.close();
    await b?.close();
    await redis?.close();
  });

  it("client.login sends any body to the host's check: right password in, wrong one 401", async () => {
    const t = startClient(a.url);
    opened.push(t);
    const wrong = await t.client.login({ username: "alice", password: "nope" }).catch((err: unknown) => err);
    expect(wrong).toBeInstanceOf(TetherClientError);
    expect(wrong).toMatchObject({ code: ErrorCode.InvalidCredentials, status: 401 });
    await t.client.login({ username: "alice", password: "wonderland" });
    expect((await t.client.session()).authenticated).toBe(true);
    t.client.connect();
    await t.welcomed(1);
    // The same session on the other instance.
    const published = nextEvent<{ jobId: string }>(t.client, "job:done");
    await b.tether.publisher.publish({ user: "alice" }, "job:done", { jobId: "from-b" });
    expect(await published).toMatchObject({ jobId: "from-b" });
  });

  it("the per-account limit still applies to client.login with the host's check", async () => {
    for (let i = 0; i < 3; i++) {
      const t = startClient(a.url);
      opened.push(t);
      await expect(t.client.login({ username: "carol", password: `guess ${i}` })).rejects.toMatchObject({
        code: ErrorCode.InvalidCredentials,
      });
    }
    const t = startClient(b.url);
    opened.push(t);
    await expect(t.client.login({ username: "Carol", password: "correct horse" })).rejects.toMatchObject({
      code: ErrorCode.RateLimited,
      status: 429,
    });
  });

  it("host-issued tokens connect on two instances, with no Tether cookie, and reconnect with a ticket", async () => {
    const cookieSessions = async () =>
      (await redis.client().keys("tether:sess:*")).filter((key) => !key.startsWith("tether:sess:host:")).sort();
    const before = await cookieSessions();
    const bearer = await hostLogin(a, "alice");
    const onA = hostTokenClient(a, bearer, opened);
    const onB = hostTokenClient(b, bearer, opened);
    onA.client.connect();
    onB.client.connect();
    await onA.welcomed(1);
    await onB.welcomed(1);
    // One user stream: an event reaches both tabs.
    const both = Promise.all([onA, onB].map((t) => nextEvent<{ jobId: string }>(t.client, "job:done")));
    await b.tether.publisher.publish({ user: "alice" }, "job:done", { jobId: "to-both" });
    expect((await both).map((p) => p.jobId)).toEqual(["to-both", "to-both"]);

    // A dropped connection comes back with the resume ticket: no token request. (On a loaded machine
    // an attempt may be turned away busy; the retry then asks a token of its own, and only then.)
    a.tether.io?.local.disconnectSockets(true);
    await onA.welcomed(2);
    expect(onA.calls).toHaveLength(1 + onA.busy.length);
    expect([...onA.setCookies, ...onB.setCookies]).toEqual([]);
    expect(await cookieSessions()).toEqual(before);
    // The host's session key is never stored as such: only its hash names the session.
    const { sessionId } = sessions.get(bearer) as HostSession;
    const keys = await redis.client().keys("tether:*");
    expect(keys.filter((key) => key.startsWith("tether:sess:host:")).length).toBeGreaterThan(0);
    expect(keys.some((key) => key.includes(sessionId))).toBe(false);
  });

  it("with tickets off, every reconnect asks getToken again", async () => {
    const bearer = await hostLogin(b, "alice");
    const t = hostTokenClient(b, bearer, opened, { resumeTickets: false });
    t.client.connect();
    await t.welcomed(1);
    b.tether.io?.local.disconnectSockets(true);
    await t.welcomed(2);
    expect(t.calls).toHaveLength(2 + t.busy.length);
  });

  it("tether.endSession ends the session's sockets on every instance and refuses its tokens", async () => {
    const bearer = await hostLogin(a, "alice");
    const onA = hostTokenClient(a, bearer, opened);
    const onB = hostTokenClient(b, bearer, opened);
    onA.client.connect();
    onB.client.connect();
    await onA.welcomed(1);
    await onB.welcomed(1);
    // A token minted before the end, not yet used.
    const early = await fetch(`${a.url}/my/tether-token`, { headers: { authorization: `Bearer ${bearer}` } });
    const { token } = (await early.json()) as { token: string };
    const ended = [onA, onB].map((t) => nextEvent<SessionEndedPayload>(t.client, "session:ended"));
    const revoked = await fetch(`${a.url}/my/revoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${bearer}` },
    });
    expect(revoked.status).toBe(204);
    expect(await Promise.all(ended)).toEqual([
      { reason: SessionEndReason.Logout },
      { reason: SessionEndReason.Logout },
    ]);
    await onA.waitForState("unauthenticated");
    await onB.waitForState("unauthenticated");
    expect((await refusal(b.url, { token })).data?.code).toBe(ErrorCode.SessionExpired);
    // The host's own session is still valid, but Tether mints nothing for the ended key.
    const again = await fetch(`${b.url}/my/tether-token`, { headers: { authorization: `Bearer ${bearer}` } });
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ error: { code: ErrorCode.SessionRequired } });
    onA.client.connect();
    await onA.waitForState("unauthenticated");
    expect(onA.calls).toHaveLength(2 + onA.busy.length);
  });

  it("the host's expiresAt caps the session: session:ended {expired} at the cap", async () => {
    const bearer = await hostLogin(b, "alice", 1_500);
    const t = hostTokenClient(b, bearer, opened);
    t.client.connect();
    await t.welcomed(1);
    const ended = await nextEvent<SessionEndedPayload>(t.client, "session:ended");
    expect(ended).toEqual({ reason: SessionEndReason.Expired });
    expect(Date.now()).toBeGreaterThanOrEqual((sessions.get(bearer) as HostSession).expiresAt);
    await t.waitForState("unauthenticated");
  });

  it("a cap the host extends holds for the sockets connected before, from the next token on", async () => {
    const bearer = await hostLogin(a, "alice", 1_500);
    const first = hostTokenClient(a, bearer, opened);
    first.client.connect();
    await first.welcomed(1);
    const oldCap = (sessions.get(bearer) as HostSession).expiresAt;
    const ends: SessionEndedPayload[] = [];
    first.client.on("session:ended", (payload) => ends.push(payload));
    const extended = await fetch(`${a.url}/my/extend?ms=60000`, {
      method: "POST",
      headers: { authorization: `Bearer ${bearer}` },
    });
    expect(extended.status).toBe(204);
    // Another tab of the same sign-in fetches a token: the session's cap moves.
    const second = hostTokenClient(a, bearer, opened);
    second.client.connect();
    await second.welcomed(1);
    // The passing of the old cap is the scenario: then a few liveness rounds (200 ms each).
    await idleFor(Math.max(0, oldCap - Date.now()) + 1_000);
    expect(ends).toEqual([]);
    expect([first.client.state, second.client.state]).toEqual(["connected", "connected"]);
  });
});

describe("host-issued tokens in embedded mode", () => {
  let app: HostApp;
  const sessions = new Map<string, HostSession>();
  const opened: TestClient[] = [];

  beforeAll(async () => {
    app = await startHost(sessions, {});
  });
  afterAll(async () => {
    for (const t of opened) t.client.close();
    await app?.close();
  });

  it("connects with getToken, reconnects, and ends with tether.endSession", async () => {
    const bearer = await hostLogin(app, "alice");
    const t = hostTokenClient(app, bearer, opened);
    t.client.connect();
    await t.welcomed(1);
    app.tether.io?.local.disconnectSockets(true);
    await t.welcomed(2);
    const ended = nextEvent<SessionEndedPayload>(t.client, "session:ended");
    await fetch(`${app.url}/my/revoke`, { method: "POST", headers: { authorization: `Bearer ${bearer}` } });
    expect(await ended).toEqual({ reason: SessionEndReason.Logout });
    await waitFor("unauthenticated", () => t.client.state === "unauthenticated");
  });
});
