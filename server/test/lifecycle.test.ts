import type { JobProgressPayload } from "@tether/shared";
import { connectedClient, startClient, type TestClient } from "@tether/testkit/client";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startProxy, type TestProxy } from "@tether/testkit/proxy";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { idleFor, waitFor } from "@tether/testkit/wait";
import type { CookieJar } from "tough-cookie";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "lifecycle-test-api-key-0123456789";
const TOKEN_TTL_MS = 1_000;
const PING_INTERVAL_MS = 500;
/** Longer than test 3's outage: a session with no socket and no request for this long is gone. */
const SESSION_IDLE_TTL_MS = 4_000;
/** Session ends are noticed within this bound (the configured check interval). */
const CHECK_INTERVAL_MS = 300;

describe("the connection outlives everything but the end of the login session", () => {
  let redis: TestRedis;
  let a: TestInstance;
  let b: TestInstance;
  let proxy: TestProxy;
  const clients: TestClient[] = [];

  const loggedIn = (url: string, jar?: CookieJar) => connectedClient(url, API_KEY, clients, jar ? { jar } : {});

  beforeAll(async () => {
    redis = await startRedis();
    const env = {
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_WS_TOKEN_TTL: `${TOKEN_TTL_MS}ms`,
      TETHER_PING_INTERVAL: `${PING_INTERVAL_MS}ms`,
      TETHER_SESSION_IDLE_TTL: `${SESSION_IDLE_TTL_MS}ms`,
      TETHER_SESSION_CHECK_INTERVAL: `${CHECK_INTERVAL_MS}ms`,
    };
    [a, b] = await Promise.all([startInstance(env), startInstance(env)]);
    proxy = await startProxy([a.port, b.port]);
  });

  afterAll(async () => {
    for (const t of clients) t.client.close();
    await proxy?.close();
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.close();
  });

  it("1. idle past the token TTL, then its instance restarts: it reconnects with no login", async () => {
    const t = await loggedIn(proxy.url);
    await idleFor(3 * TOKEN_TTL_MS);
    const home = t.welcomes[0]?.instance === (await nameOf(a)) ? a : b;
    await home.stop();
    await t.welcomed(2);
    await home.restart();
    expect(t.states).not.toContain("unauthenticated");
  });

  it("2. a job streams events for 5x the token TTL: the client stays connected throughout", async () => {
    const t = await loggedIn(a.url);
    const steps = (5 * TOKEN_TTL_MS) / 100;
    const seen: number[] = [];
    t.client.on("job:progress", (p: JobProgressPayload) => seen.push(p.step));
    const done = new Promise((resolve) => t.client.on("job:done", resolve));
    expect((await t.post("/api/jobs", { steps, intervalMs: 100 })).status).toBe(202);
    await done;
    expect(seen).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
    expect(t.states.slice(-1)).toEqual(["connected"]);
    expect(t.welcomes).toHaveLength(1);
  });

  it("3. a network interruption longer than several ping intervals: back with no login, never unauthenticated", async () => {
    const t = await loggedIn(proxy.url);
    proxy.refusing = true;
    proxy.cut();
    await waitFor("the client to notice", () => t.client.state === "reconnecting");
    await idleFor(4 * PING_INTERVAL_MS);
    proxy.refusing = false;
    await t.welcomed(2);
    expect(t.states).toContain("reconnecting");
    expect(t.states).not.toContain("unauthenticated");
  });

  it("4. graceful restart of the client's instance: it lands on the other one", async () => {
    const t = await loggedIn(proxy.url);
    const home = t.welcomes[0]?.instance === (await nameOf(a)) ? a : b;
    expect(await home.stop()).toBe(0);
    const second = await t.welcomed(2);
    expect(second.instance).not.toBe(t.welcomes[0]?.instance);
    await home.restart();
    expect(t.states).not.toContain("unauthenticated");
  });

  it("6a. logout ends every socket of the session, on every instance", async () => {
    const first = await loggedIn(a.url);
    const second = await loggedIn(b.url, first.jar);
    const ended = new Promise((resolve) => second.client.on("session:ended", resolve));
    expect((await first.post("/api/auth/logout")).status).toBe(204);
    expect(await ended).toEqual({ reason: "logout" });
    await first.waitForState("unauthenticated");
    await second.waitForState("unauthenticated");
  });

  it("6b. a session deleted in Redis is noticed within the check interval, everywhere", async () => {
    const first = await loggedIn(a.url);
    const second = await loggedIn(b.url, first.jar);
    const reasons: unknown[] = [];
    for (const t of [first, second]) t.client.on("session:ended", (p) => reasons.push(p));
    const probe = redis.client();
    const keys = await probe.keys("tether:sess:*");
    const sid = decodeURIComponent((await first.jar.getCookieString(a.url)).split("=")[1] ?? "")
      .slice(2)
      .split(".")[0];
    expect(keys).toContain(`tether:sess:${sid}`);
    const deletedAt = Date.now();
    await probe.del(`tether:sess:${sid}`);
    await first.waitForState("unauthenticated");
    await second.waitForState("unauthenticated");
    // Generous against a loaded machine, but well below the idle TTL that would end it anyway.
    expect(Date.now() - deletedAt).toBeLessThan(SESSION_IDLE_TTL_MS);
    expect(reasons).toContainEqual({ reason: "revoked" });
  });

  it("7. two tabs on different instances: one closed, the other idle keeps the session alive past its idle TTL", async () => {
    const first = await loggedIn(a.url);
    const second = await loggedIn(b.url, first.jar);
    first.client.close();
    await idleFor(1.5 * SESSION_IDLE_TTL_MS);
    expect(second.client.state).toBe("connected");
    expect(await second.client.echo("alive")).toBe("alive");
    expect((await second.post("/api/auth/ws-token")).status).toBe(200);
    expect(second.states).not.toContain("unauthenticated");
  });

  it("without a connected socket the idle TTL does end the session", async () => {
    const t = await loggedIn(a.url);
    t.client.close();
    await idleFor(SESSION_IDLE_TTL_MS + 1_000);
    expect((await t.post("/api/auth/ws-token")).status).toBe(401);
  });

  /** An instance's id, as `welcome` reports it. */
  async function nameOf(instance: TestInstance): Promise<string> {
    const t = await loggedIn(instance.url);
    t.client.close();
    return t.welcomes[0]?.instance ?? "";
  }
});

describe("the absolute cap ends a session even while it is in use", () => {
  let redis: TestRedis;
  let server: TestInstance;

  beforeAll(async () => {
    redis = await startRedis();
    server = await startInstance({
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_SESSION_IDLE_TTL: "2s",
      TETHER_SESSION_MAX_AGE: "3s",
      TETHER_SESSION_CHECK_INTERVAL: `${CHECK_INTERVAL_MS}ms`,
    });
  });
  afterAll(async () => {
    await server?.kill();
    await redis?.close();
  });

  it("6c. at the cap the client gets session:ended {expired} and becomes unauthenticated at once", async () => {
    const t = startClient(server.url);
    await t.client.login(API_KEY);
    const loggedInAt = Date.now();
    const ended = new Promise((resolve) => t.client.on("session:ended", resolve));
    t.client.connect();
    await t.welcomed(1);
    expect(await ended).toEqual({ reason: "expired" });
    await t.waitForState("unauthenticated");
    expect(Date.now() - loggedInAt).toBeGreaterThanOrEqual(3_000 - 50);
    expect(t.states.filter((s) => s === "reconnecting")).toHaveLength(0);
    expect((await t.post("/api/auth/ws-token")).status).toBe(401);
  });
});
