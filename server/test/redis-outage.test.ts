import { ErrorCode } from "@tether/shared";
import { startClient, type TestClient } from "@tether/testkit/client";
import { login, post } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { idleFor, waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "outage-test-api-key-0123456789abc";
const COMMAND_TIMEOUT_MS = 500;
const OUTAGE_MS = 3_000;

/** Scenario 5: Redis stops for several seconds and comes back, with clients connected and connecting. */
describe("a Redis outage", () => {
  let redis: TestRedis;
  let a: TestInstance;
  let b: TestInstance;

  beforeAll(async () => {
    redis = await startRedis({ persistence: true });
    const env = {
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_REDIS_COMMAND_TIMEOUT: `${COMMAND_TIMEOUT_MS}ms`,
      TETHER_SESSION_CHECK_INTERVAL: "300ms",
      TETHER_PING_INTERVAL: "500ms",
    };
    [a, b] = await Promise.all([startInstance(env), startInstance(env)]);
  });
  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.close();
  });

  it("keeps connected sockets, refuses new work with UNAVAILABLE quickly, and recovers by itself", async () => {
    const connected: TestClient = startClient(a.url);
    await connected.client.login(API_KEY);
    connected.client.connect();
    await connected.welcomed(1);
    const session = await login(b.url, API_KEY);
    const waiting = startClient(b.url, { jar: connected.jar });
    const waitingErrors: string[] = [];
    waiting.client.on("error", (e) => waitingErrors.push(e.code));

    await redis.stop();

    // New work is refused, fast and retryably; nothing hangs.
    for (const instance of [a, b]) {
      const started = Date.now();
      const token = await post(`${instance.url}/api/auth/ws-token`, undefined, { cookie: session.cookie });
      expect(token.status).toBe(503);
      expect(token.body).toMatchObject({ error: { code: ErrorCode.Unavailable } });
      const loginAttempt = await post(`${instance.url}/api/auth/login`, { apiKey: API_KEY });
      expect(loginAttempt.status).toBe(503);
      expect((await fetch(`${instance.url}/readyz`)).status).toBe(503);
      expect((await fetch(`${instance.url}/healthz`)).status).toBe(200);
      expect(Date.now() - started).toBeLessThan(4 * COMMAND_TIMEOUT_MS + 1_000);
    }
    waiting.client.connect();
    await waitFor("the waiting client to be refused", () => waitingErrors.includes(ErrorCode.Unavailable));
    expect(waiting.client.state).toBe("connecting");

    // The outage lasts several seconds: many session checks and ping intervals go by.
    await idleFor(OUTAGE_MS);
    expect(connected.client.state).toBe("connected");
    expect(await connected.client.echo("during the outage")).toBe("during the outage");

    await redis.start();

    // Waiting clients get in, readiness returns, and fan-out resumes on every instance.
    await waiting.welcomed(1);
    await waitFor(
      "readiness",
      async () => (await fetch(`${a.url}/readyz`)).status === 200 && (await fetch(`${b.url}/readyz`)).status === 200,
    );
    const progress = new Promise((resolve) => connected.client.on("job:done", resolve));
    const viaB = await waiting.post("/api/jobs", { steps: 2, intervalMs: 10 });
    expect(viaB.status).toBe(202);
    await progress;
    expect(connected.states).not.toContain("unauthenticated");
    expect(waiting.states).not.toContain("unauthenticated");
    expect(connected.welcomes).toHaveLength(1);
    connected.client.close();
    waiting.client.close();
  });

  it("sessions survive a Redis restart when Redis persists its data", async () => {
    const session = await login(a.url, API_KEY);
    await redis.stop();
    await redis.start();
    await waitFor("readiness", async () => (await fetch(`${a.url}/readyz`)).status === 200);
    const token = await post(`${a.url}/api/auth/ws-token`, undefined, { cookie: session.cookie });
    expect(token.status).toBe(200);
  });
});
