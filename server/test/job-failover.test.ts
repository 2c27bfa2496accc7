import type { JobProgressPayload } from "@tether/shared";
import { connectRaw, HandshakeRefused, login, post, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { freePort } from "@tether/testkit/ports";
import { startProxy, type TestProxy } from "@tether/testkit/proxy";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { idleFor, waitFor } from "@tether/testkit/wait";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "job-failover-test-api-key-0123456789";

/** How many writes Redis refused with READONLY so far. */
async function readOnlyRefusals(admin: Redis): Promise<number> {
  const match = /errorstat_READONLY:count=(\d+)/.exec(await admin.info("errorstats"));
  return Number(match?.[1] ?? 0);
}

/**
 * A failover's READONLY window on a standalone Redis: it becomes the replica of a
 * primary nothing listens at (it keeps its data: it never syncs), for `ms`, and is
 * a primary again. Resolves to the writes refused meanwhile.
 */
async function readOnlyFor(admin: Redis, ms: number): Promise<number> {
  const before = await readOnlyRefusals(admin);
  await admin.replicaof("127.0.0.1", await freePort());
  try {
    // The scenario is a window of this length: time passing is what is under test.
    await idleFor(ms);
  } finally {
    await admin.replicaof("NO", "ONE");
  }
  return (await readOnlyRefusals(admin)) - before;
}

/**
 * A raw Socket.IO client of a fresh login on `url`. A retryable refusal (UNAVAILABLE: admission
 * control on a loaded machine, a store still settling after the previous window) is retried
 * with a fresh token, as the SDK would.
 */
async function rawClient(url: string): Promise<{ socket: WelcomedSocket; cookie: string }> {
  const session = await login(url, API_KEY);
  const socket = await waitFor("a connected raw socket", async () => {
    try {
      return await connectRaw(url, { token: await wsToken(url, session) });
    } catch (err) {
      if (err instanceof HandshakeRefused && err.data?.retryable) return undefined;
      throw err;
    }
  });
  return { socket, cookie: session.cookie };
}

const eventsOf = (socket: WelcomedSocket, name: string, jobId: string) =>
  socket.received
    .filter(([event, payload]) => event === name && (payload as { jobId?: string }).jobId === jobId)
    .map(([, payload]) => payload);

describe("a job across a failover's READONLY window", () => {
  let redis: TestRedis;
  let admin: Redis;
  let instance: TestInstance;
  let short: TestInstance;
  const sockets: WelcomedSocket[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
    const env = { REDIS_URL: redis.url, TETHER_API_KEY: API_KEY };
    [instance, short] = await Promise.all([
      startInstance(env),
      startInstance({ ...env, TETHER_PUBLISH_DEADLINE: "2s" }),
    ]);
  });

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await Promise.all([instance?.kill(), short?.kill()]);
    await redis?.close();
  });

  it("the demo job of 100 steps at 50 ms survives 2.5 s of READONLY: every step exactly once at the raw client", async () => {
    const { socket, cookie } = await rawClient(instance.url);
    sockets.push(socket);
    const res = await post(`${instance.url}/api/jobs`, { steps: 100, intervalMs: 50 }, { cookie });
    expect(res.status).toBe(202);
    const jobId = res.body?.jobId as string;
    await waitFor("step 20", () => eventsOf(socket, "job:progress", jobId).length >= 20);
    const refused = await readOnlyFor(admin, 2_500);
    // The window really refused the job's writes (and they were retried).
    expect(refused).toBeGreaterThan(2);
    await waitFor("job:done", () => eventsOf(socket, "job:done", jobId).length > 0, { timeoutMs: 30_000 });
    const steps = eventsOf(socket, "job:progress", jobId).map((p) => (p as JobProgressPayload).step);
    expect(steps).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(eventsOf(socket, "job:done", jobId)).toHaveLength(1);
    expect(eventsOf(socket, "job:failed", jobId)).toEqual([]);
    // Nothing was lost, so nothing had to be reported lost.
    expect(
      socket.received.filter(([event, p]) => event === "recovery" && !(p as { recovered: boolean }).recovered),
    ).toEqual([]);
  });

  it("past TETHER_PUBLISH_DEADLINE the job ends with job:failed {jobId, step, reason}, never in silence", async () => {
    const { socket, cookie } = await rawClient(short.url);
    sockets.push(socket);
    const res = await post(`${short.url}/api/jobs`, { steps: 100, intervalMs: 50 }, { cookie });
    expect(res.status).toBe(202);
    const jobId = res.body?.jobId as string;
    await waitFor("step 5", () => eventsOf(socket, "job:progress", jobId).length >= 5);
    // A second longer than the 2 s deadline: the step in flight is given up, and job:failed
    // (retried under a deadline of its own) lands after the window.
    await readOnlyFor(admin, 3_000);
    const [failed] = (await waitFor("job:failed", () => {
      const found = eventsOf(socket, "job:failed", jobId);
      return found.length > 0 ? found : undefined;
    })) as { jobId: string; step: number; reason: string; offset: string }[];
    expect(failed).toMatchObject({ jobId, reason: "UNAVAILABLE" });
    expect(typeof failed?.offset).toBe("string");
    const steps = eventsOf(socket, "job:progress", jobId).map((p) => (p as JobProgressPayload).step);
    // Every step before the failed one, once each; none after; no job:done.
    expect(steps).toEqual(Array.from({ length: (failed?.step ?? 0) - 1 }, (_, i) => i + 1));
    expect(eventsOf(socket, "job:done", jobId)).toEqual([]);
  });
});

/**
 * A real failover: the primary holding the job's stream is killed with kill -9
 * mid-job, one of its two replicas promoted and the other made its replica (what
 * Sentinel does); the instance's address (a TCP proxy, as a Sentinel-aware proxy
 * or a DNS name would be) moves to it. With TETHER_PUBLISH_REPLICAS=1 every
 * acknowledged step is on a replica, and the step in flight is retried under its
 * id on the new primary.
 */
describe("a job across a primary killed and its replica promoted", () => {
  let primary: TestRedis;
  let replica: TestRedis;
  let other: TestRedis;
  let proxy: TestProxy;
  let instance: TestInstance;
  const sockets: WelcomedSocket[] = [];

  beforeAll(async () => {
    primary = await startRedis();
    const replicaOfPrimary = () => startRedis({ args: ["--replicaof", "127.0.0.1", String(primary.port)] });
    [replica, other] = await Promise.all([replicaOfPrimary(), replicaOfPrimary()]);
    for (const r of [replica, other]) {
      const probe = r.client();
      await waitFor("a replica in sync", async () => /master_link_status:up/.test(await probe.info("replication")));
    }
    proxy = await startProxy([primary.port]);
    instance = await startInstance({
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      TETHER_API_KEY: API_KEY,
      TETHER_PUBLISH_REPLICAS: "1",
    });
  });

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await instance?.kill();
    await proxy?.close();
    await Promise.all([primary?.close(), replica?.close(), other?.close()]);
  });

  it("the demo job of 100 steps at 50 ms: every step exactly once at the raw client, nothing reported lost", async () => {
    const { socket, cookie } = await rawClient(instance.url);
    sockets.push(socket);
    const res = await post(`${instance.url}/api/jobs`, { steps: 100, intervalMs: 50 }, { cookie });
    expect(res.status).toBe(202);
    const jobId = res.body?.jobId as string;
    await waitFor("step 20", () => eventsOf(socket, "job:progress", jobId).length >= 20);
    await primary.stop({ kill: true });
    await replica.client().replicaof("NO", "ONE");
    await other.client().replicaof("127.0.0.1", String(replica.port));
    proxy.backends = [replica.port];
    proxy.cut();
    await waitFor("job:done", () => eventsOf(socket, "job:done", jobId).length > 0, { timeoutMs: 40_000 });
    const steps = eventsOf(socket, "job:progress", jobId).map((p) => (p as JobProgressPayload).step);
    expect(steps).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(eventsOf(socket, "job:done", jobId)).toHaveLength(1);
    expect(
      socket.received.filter(([event, p]) => event === "recovery" && !(p as { recovered: boolean }).recovered),
    ).toEqual([]);
  }, 60_000);
});
