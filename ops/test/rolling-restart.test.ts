// A rolling restart of all three instances behind the real HAProxy, one at a
// time, under 300 connected clients receiving a job's events: nobody is logged
// out, nobody loses or repeats an event, and the reconnects are spread out.
import type { JobProgressPayload } from "@tether/shared";
import { startClient, type TestClient } from "@tether/testkit/client";
import { FAST_ENV } from "@tether/testkit/instance";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Cluster, SOURCE_COMMAND, startCluster } from "../../scripts/cluster/start.mjs";
import { createPublisher, loadConfig, type WorkerPublisher } from "../../server/src/index.js";

const CLIENTS = 300;
/** Ten tabs per login session, like a user with many tabs open. */
const TABS_PER_SESSION = 10;
const STEPS = 200;
const DRAIN_WINDOW_MS = 2_000;
/** Clients connected at once while setting up: three sessions. */
const CONNECT_BATCH = 30;

describe("rolling restart under load", () => {
  let cluster: Cluster;
  let publisher: WorkerPublisher;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    cluster = await startCluster({
      instances: 3,
      command: SOURCE_COMMAND,
      env: {
        ...FAST_ENV,
        TETHER_DRAIN_WINDOW: `${DRAIN_WINDOW_MS}ms`,
        // The drain window plus closing 100 sockets and the stores: past FAST_ENV's 5 s on a loaded
        // box (an instance exited 1 at its deadline in a clean-clone run beside two CPU hogs).
        TETHER_SHUTDOWN_TIMEOUT: "15s",
        TETHER_PING_INTERVAL: "2s",
        TETHER_PING_TIMEOUT: "5s",
      },
    });
    publisher = await createPublisher(loadConfig({ REDIS_URL: cluster.redis.url, LOG_LEVEL: "silent" }));
  }, 180_000);

  afterAll(async () => {
    for (const t of clients) t.client.close();
    await publisher?.close();
    await cluster?.stop();
  });

  it("300 clients, three instances restarted one by one: zero logouts, zero lost or repeated events", async () => {
    for (let i = 0; i < CLIENTS; i++) {
      const first = clients[i - (i % TABS_PER_SESSION)];
      const t = startClient(cluster.url, { ca: cluster.ca, ...(first ? { jar: first.jar } : {}) });
      if (!first) await t.client.login(cluster.apiKey);
      clients.push(t);
    }
    const steps = clients.map(() => [] as number[]);
    const welcomedAt: { at: number; instance: string }[] = [];
    const lostAt: number[] = [];
    clients.forEach((t, i) => {
      t.client.on("job:progress", (p: JobProgressPayload) => p.jobId === "rolling" && steps[i]?.push(p.step));
      t.client.on("welcome", (w) => welcomedAt.push({ at: Date.now(), instance: w.instance }));
      t.client.on("state", (state) => state === "reconnecting" && lostAt.push(Date.now()));
    });
    // Users arrive a few sessions at a time, not 300 TLS handshakes through HAProxy in one
    // instant from this one process: on a loaded box (a CI run beside CPU hogs) such a herd
    // overran every timeout and left clients backing off for minutes.
    for (let i = 0; i < CLIENTS; i += CONNECT_BATCH) {
      const batch = clients.slice(i, i + CONNECT_BATCH);
      for (const t of batch) t.client.connect();
      await waitFor(`clients ${i + 1}-${i + batch.length} connected`, () => allConnected(batch), { timeoutMs: 60_000 });
    }
    const connectedAt = Date.now();

    // The job runs in a worker (this process), as long-running work should: it outlives any instance.
    const job = (async () => {
      for (let step = 1; step <= STEPS; step++) {
        await publisher.publish({ user: "admin" }, "job:progress", { jobId: "rolling", step, steps: STEPS });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    // This process's clock, ticking: a process stalled by a loaded box handles a spread-out drain's
    // closes all at once when it wakes, and would see a spike that was not there on the wire.
    const ticks: number[] = [];
    const ticker = setInterval(() => ticks.push(Date.now()), 20).unref();
    const longestStall = (from: number, to: number) =>
      ticks.reduce(
        (worst, at, i) => (at >= from && at <= to && i > 0 ? Math.max(worst, at - (ticks[i - 1] ?? at)) : worst),
        0,
      );

    const restarts: { from: number; to: number }[] = [];
    for (const instance of cluster.instances) {
      const from = Date.now();
      expect(await instance.stop()).toBe(0);
      restarts.push({ from, to: Date.now() });
      await instance.start();
      await cluster.lb.waitForServer(instance.name, "UP");
    }
    await job;
    clearInterval(ticker);
    await waitFor(
      "every client to have every step",
      () => steps.every((s) => s.length >= STEPS) && allConnected(clients),
      { timeoutMs: 60_000 },
    );

    const expected = Array.from({ length: STEPS }, (_, i) => i + 1);
    const wrong = steps.filter((s) => JSON.stringify(s) !== JSON.stringify(expected));
    expect(wrong).toEqual([]);
    for (const t of clients) expect(t.states).not.toContain("unauthenticated");

    // Every client was moved at least once, and the moves were spread over the drain window, not a spike.
    const moves = welcomedAt.filter((w) => w.at > connectedAt);
    expect(moves.length).toBeGreaterThanOrEqual(CLIENTS);
    for (const { from, to } of restarts) {
      const lost = lostAt.filter((at) => at >= from && at <= to);
      expect(lost.length).toBeGreaterThan(CLIENTS / 10);
      const stall = longestStall(from, to);
      if (stall > DRAIN_WINDOW_MS / 3) {
        console.log(`rolling restart: spread not judged, this process stalled ${stall} ms during the drain`);
        continue;
      }
      expect(Math.max(...lost) - Math.min(...lost)).toBeGreaterThan(DRAIN_WINDOW_MS / 3);
    }
    // The resulting handshake rate on the survivors, for the record (client clocks, so only indicative).
    const perSecond = new Map<number, number>();
    for (const { at } of moves) perSecond.set(Math.floor(at / 1000), (perSecond.get(Math.floor(at / 1000)) ?? 0) + 1);
    console.log(`rolling restart: ${moves.length} reconnects; peak ${Math.max(...perSecond.values())} handshakes/s`);
  }, 360_000);
});

/** True once every client is connected; otherwise throws how many are in which state (a timeout names them). */
function allConnected(clients: TestClient[]): true {
  const states = new Map<string, number>();
  for (const t of clients) states.set(t.client.state, (states.get(t.client.state) ?? 0) + 1);
  if (states.get("connected") === clients.length) return true;
  throw new Error(JSON.stringify(Object.fromEntries(states)));
}
