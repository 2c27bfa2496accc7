import { ErrorCode } from "@tether/shared";
import { startClient, type TestClient } from "@tether/testkit/client";
import { login, refusal, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startProxy, type TestProxy } from "@tether/testkit/proxy";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "drain-test-api-key-0123456789abcd";
/**
 * Long enough that the checks made during the drain (readiness, a refused handshake) fit in it on a
 * loaded machine: once the window is over the instance exits, and a late check meets no server.
 */
const DRAIN_WINDOW_MS = 3_000;
const CLIENTS = 40;

describe("graceful drain on SIGTERM", () => {
  let redis: TestRedis;
  let leaving: TestInstance;
  let staying: TestInstance;
  let proxy: TestProxy;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const env = { REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_DRAIN_WINDOW: `${DRAIN_WINDOW_MS}ms` };
    [leaving, staying] = await Promise.all([startInstance(env), startInstance(env)]);
    proxy = await startProxy([staying.port]);
  });
  afterAll(async () => {
    for (const t of clients) t.client.close();
    await proxy?.close();
    await Promise.all([leaving?.kill(), staying?.kill()]);
    await redis?.close();
  });

  it("reports not-ready at once, refuses handshakes, moves clients in jittered batches, exits 0", async () => {
    // All clients start on the leaving instance; through the proxy they can only come back on the other.
    const viaProxy = await startProxy([leaving.port]);
    for (let i = 0; i < CLIENTS; i++) {
      const t = startClient(viaProxy.url);
      await t.client.login(API_KEY);
      clients.push(t);
    }
    const lostAt: number[] = [];
    for (const t of clients) {
      t.client.on("state", (state) => state === "reconnecting" && lostAt.push(Date.now()));
      t.client.connect();
    }
    await waitFor("every client connected", () =>
      clients.every((t) => t.welcomes.length === 1 && t.client.state === "connected"),
    );
    viaProxy.backends = [staying.port];
    const session = await login(leaving.url, API_KEY);
    const token = await wsToken(leaving.url, session);

    const started = Date.now();
    const exited = leaving.stop();
    await waitFor(
      "not ready",
      async () => (await fetch(`${leaving.url}/readyz`).catch(() => undefined))?.status === 503,
      {
        timeoutMs: 1_000,
        intervalMs: 10,
      },
    );
    expect(
      (await refusal(leaving.url, { token }).catch((err: Error) => err)) as { data?: { code: string } },
    ).toMatchObject({
      data: { code: ErrorCode.Unavailable },
    });

    await waitFor("every client back, on the other instance", () => clients.every((t) => t.welcomes.length === 2));
    expect(await exited).toBe(0);
    // The window, then the exit, with slack for a loaded machine (3.5 s, as with the 1.5 s window before).
    expect(Date.now() - started).toBeLessThan(DRAIN_WINDOW_MS + 3_500);
    const spread = Math.max(...lostAt) - Math.min(...lostAt);
    // Not all at once: the disconnects span a good part of the drain window.
    expect(spread).toBeGreaterThan(DRAIN_WINDOW_MS / 3);
    expect(new Set(clients.map((t) => t.welcomes[1]?.instance)).size).toBe(1);
    for (const t of clients) expect(t.states).not.toContain("unauthenticated");
    const metrics = await (await fetch(`${staying.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^tether_connected_sockets ${CLIENTS}$`, "m"));
    expect(metrics).toMatch(new RegExp(`^tether_reconnects_total ${CLIENTS}$`, "m"));
    await viaProxy.close();
    await leaving.restart();
  });

  it("exposes Prometheus metrics: sockets, handshakes by result, tokens, store latency", async () => {
    await wsToken(staying.url, await login(staying.url, API_KEY));
    const text = await (await fetch(`${staying.url}/metrics`)).text();
    expect(text).toMatch(/^tether_connected_sockets \d+$/m);
    expect(text).toMatch(/^tether_handshakes_total\{result="ok"\} \d+$/m);
    expect(text).toMatch(/^tether_ws_tokens_total\{result="issued"\} \d+$/m);
    expect(text).toMatch(/^tether_reconnects_total \d+$/m);
    // The moved clients came back with their resume tickets: no token was consumed here.
    expect(text).toMatch(/^tether_ws_tokens_total\{result="ticket"\} [1-9]\d*$/m);
    expect(text).toMatch(/tether_redis_command_duration_seconds_bucket\{le="[^"]+",op="auth\.consumeTicket"\}/);
    expect(text).toMatch(/^process_cpu_seconds_total /m);
  });
});
