import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ErrorCode, SessionEndReason } from "@tether/shared";
import { connectRaw, refusal, type WelcomedSocket } from "@tether/testkit/http";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { idleFor, nextEvent, waitFor } from "@tether/testkit/wait";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTether, loadConfig, type Tether, TetherError } from "../../src/index.js";

const SESSION_SECRET = "host-sessions-security-secret-0123456789";
const MAX_AGE_MS = 2_000;
const HOUR_MS = 3_600_000;

/** One sign-in at the host: who, its session key, until when. */
interface HostSession {
  userId: string;
  sessionKey: string;
  expiresAt: number;
}

interface HostApp {
  url: string;
  tether: Tether;
  /**
   * Signs `userId` in at the host (no password: the host's login is not the subject),
   * under the next number of the user's counter, or under `sessionKey`.
   */
  signIn(userId: string, sessionKey?: string): HostSession;
  close(): Promise<void>;
}

/** What the host's token route answered. */
interface Grant {
  status: number;
  token?: string;
  code?: string;
  /** When the request went out and when its answer came back (epoch ms). */
  sentAt: number;
  answeredAt: number;
}

/**
 * A host app whose session keys are a per-user counter (as when a JWT's `jti` counts
 * a user's sign-ins): alice's first sign-in and bob's first sign-in share the key "1".
 * `GET /my/tether-token?user=` mints a Tether token for that user's latest sign-in,
 * `POST /my/logout?user=` ends it on the Tether side (the host's own session stays valid).
 */
async function startHost(env: Record<string, string>): Promise<HostApp> {
  const tether = await createTether({
    config: loadConfig({
      LOG_LEVEL: "silent",
      TETHER_SESSION_SECRET: SESSION_SECRET,
      TETHER_SESSION_CHECK_INTERVAL: "200ms",
      ...env,
    }),
  });
  const counters = new Map<string, number>();
  const current = new Map<string, HostSession>();
  const app = express();
  const sessionOf = (req: express.Request) => current.get(String(req.query.user));
  app.get("/my/tether-token", async (req, res) => {
    const session = sessionOf(req);
    if (!session || session.expiresAt <= Date.now()) return void res.status(401).json({ error: "log in" });
    try {
      res.set("Cache-Control", "no-store");
      res.json(await tether.issueTokenFor(req, session));
    } catch (err) {
      if (!(err instanceof TetherError)) throw err;
      res.status(err.status).json(err.toBody());
    }
  });
  app.post("/my/logout", async (req, res) => {
    const session = sessionOf(req);
    if (!session) return void res.status(401).end();
    await tether.endSession(session.sessionKey);
    res.status(204).end();
  });
  const http: Server = createServer(app);
  tether.attach(http);
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    tether,
    signIn(userId, sessionKey) {
      const n = (counters.get(userId) ?? 0) + 1;
      counters.set(userId, n);
      const session = { userId, sessionKey: sessionKey ?? String(n), expiresAt: Date.now() + HOUR_MS };
      current.set(userId, session);
      return session;
    },
    close: async () => {
      await tether.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

async function grant(app: HostApp, userId: string): Promise<Grant> {
  const sentAt = Date.now();
  const res = await fetch(`${app.url}/my/tether-token?user=${encodeURIComponent(userId)}`);
  const body = (await res.json()) as { token?: string; error?: { code: string } };
  return { status: res.status, token: body.token, code: body.error?.code, sentAt, answeredAt: Date.now() };
}

async function logout(app: HostApp, userId: string): Promise<void> {
  const res = await fetch(`${app.url}/my/logout?user=${encodeURIComponent(userId)}`, { method: "POST" });
  expect(res.status).toBe(204);
}

/** The raw events a socket received with this name. */
const eventsNamed = (socket: WelcomedSocket, name: string) => socket.received.filter(([event]) => event === name);

const backends: [string, (redis: TestRedis) => Record<string, string>][] = [
  ["Redis", (redis) => ({ REDIS_URL: redis.url })],
  ["embedded", () => ({})],
];

describe.each(backends)("host-issued sessions (%s)", (_name, backendEnv) => {
  let redis: TestRedis;
  /** Default session times: the key-binding scenario is not about time. */
  let app: HostApp;
  /** TETHER_SESSION_MAX_AGE of 2 s: the cap scenarios. */
  let short: HostApp;
  const sockets: WelcomedSocket[] = [];
  const connect = async (url: string, auth: object) => {
    const socket = await connectRaw(url, auth);
    sockets.push(socket);
    return socket;
  };

  beforeAll(async () => {
    redis = await startRedis();
    app = await startHost(backendEnv(redis));
    short = await startHost({
      ...backendEnv(redis),
      TETHER_SESSION_MAX_AGE: `${MAX_AGE_MS}ms`,
      TETHER_SESSION_IDLE_TTL: `${MAX_AGE_MS}ms`,
    });
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await app?.close();
    await short?.close();
    await redis?.close();
  });

  it("a session key granted to another user is refused (FORBIDDEN); the first user's ticket still resumes as that user, and never gets the other's events", async () => {
    const alice = app.signIn("alice");
    const bob = app.signIn("bob");
    // The collision under test: two users, one session key.
    expect(bob.sessionKey).toBe(alice.sessionKey);

    const first = await grant(app, "alice");
    expect(first.status).toBe(200);
    const aliceSocket = await connect(app.url, { token: first.token });
    const { ticket } = aliceSocket.welcome;
    expect(ticket).toEqual(expect.any(String));

    const stolen = await grant(app, "bob");
    expect({ status: stolen.status, code: stolen.code }).toEqual({ status: 403, code: ErrorCode.Forbidden });

    // Alice's tab drops and comes back with its ticket.
    aliceSocket.close();
    const resumed = await connect(app.url, { ticket });
    await app.tether.publisher.publish({ user: "bob" }, "job:done", { jobId: "bob-private" });
    await app.tether.publisher.publish({ user: "alice" }, "job:done", { jobId: "alice-own" });
    // Whichever comes first: bob's event (the leak) or alice's own.
    await waitFor("an event on alice's resumed socket", () => eventsNamed(resumed, "job:done").length > 0);
    expect(eventsNamed(resumed, "job:done").map(([, payload]) => (payload as { jobId: string }).jobId)).toEqual([
      "alice-own",
    ]);

    // Still refused while alice's session lives, and after it ended (her credentials are bound to it).
    expect((await grant(app, "bob")).status).toBe(403);
    await logout(app, "alice");
    expect((await grant(app, "bob")).code).toBe(ErrorCode.Forbidden);
    // Bob's next sign-in has a key of its own: he is not locked out.
    app.signIn("bob");
    expect((await grant(app, "bob")).status).toBe(200);
    const leaked = eventsNamed(resumed, "job:done").filter(([, p]) => (p as { jobId: string }).jobId === "bob-private");
    expect(leaked).toEqual([]);
  });

  it("grants and reconnects do not move TETHER_SESSION_MAX_AGE: the session ends at the cap of its first grant", async () => {
    short.signIn("carol", randomUUID());
    const first = await grant(short, "carol");
    expect(first.status).toBe(200);
    // The cap is fixed when the first grant is served: between these two instants, plus the max age.
    const earliestCap = first.sentAt + MAX_AGE_MS;
    const latestCap = first.answeredAt + MAX_AGE_MS;
    const grants: Grant[] = [first];
    let socket = await connect(short.url, { token: first.token });
    const ends: [number, unknown][] = [];
    const watch = (s: WelcomedSocket) => s.on("session:ended", (payload: unknown) => ends.push([Date.now(), payload]));
    watch(socket);
    // A host session that keeps reconnecting, each time with a fresh token, until refused.
    while (Date.now() < latestCap + 2 * MAX_AGE_MS) {
      // The passing of time is the scenario: a reconnect every few hundred ms.
      await idleFor(300);
      const next = await grant(short, "carol");
      grants.push(next);
      if (next.status !== 200) break;
      const previous = socket;
      // A token minted just before the cap may meet it on the way: then the last socket stays.
      socket = await connect(short.url, { token: next.token }).catch(() => previous);
      if (socket !== previous) {
        watch(socket);
        previous.close();
      }
    }
    const refused = grants.filter((g) => g.status !== 200);
    expect(refused.map((g) => ({ status: g.status, code: g.code }))).toEqual([
      { status: 401, code: ErrorCode.SessionRequired },
    ]);
    // Every grant served before the cap was honoured; the first one after it was refused.
    expect(grants.filter((g) => g.answeredAt < earliestCap).every((g) => g.status === 200)).toBe(true);
    expect(refused[0]?.answeredAt).toBeGreaterThanOrEqual(earliestCap);
    // The last socket was told at the cap, and its ticket no longer resumes.
    await waitFor("session:ended on the last socket", () => ends.length > 0);
    expect(ends[0]?.[1]).toEqual({ reason: SessionEndReason.Expired });
    expect(ends[0]?.[0]).toBeGreaterThanOrEqual(earliestCap);
    expect((await refusal(short.url, { ticket: socket.welcome.ticket })).data?.code).toBe(ErrorCode.SessionExpired);
    // The host's own session is still valid (an hour): later grants stay refused.
    expect((await grant(short, "carol")).code).toBe(ErrorCode.SessionRequired);
  });

  it("an ended session stays ended past TETHER_SESSION_MAX_AGE while the host's credential is still valid", async () => {
    short.signIn("dave", randomUUID());
    const first = await grant(short, "dave");
    expect(first.status).toBe(200);
    const socket = await connect(short.url, { token: first.token });
    const ended = nextEvent(socket, "session:ended");
    await logout(short, "dave");
    expect(await ended).toEqual({ reason: SessionEndReason.Logout });
    expect((await grant(short, "dave")).code).toBe(ErrorCode.SessionRequired);
    // The passing of time is the scenario: past the max age, the host's own session still valid (an hour).
    await idleFor(MAX_AGE_MS + 500);
    const late = await grant(short, "dave");
    expect({ status: late.status, code: late.code }).toEqual({ status: 401, code: ErrorCode.SessionRequired });
  });
});
