import type { JobProgressPayload, RecoveryPayload } from "@tether/shared";
import { startClient, type TestClient } from "@tether/testkit/client";
import { connectRaw, login, post, refusal, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedisCluster, type TestRedisCluster } from "@tether/testkit/redis-cluster";
import { nextEvent, waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublisher, loadConfig, type WorkerPublisher } from "../src/index.js";

const API_KEY = "cluster-test-api-key-0123456789ab";

/** The same contract on a three-master Redis Cluster: keys spread over slots, fan-out over the cluster bus. */
describe("Redis Cluster", () => {
  let cluster: TestRedisCluster;
  let a: TestInstance;
  let b: TestInstance;
  let publisher: WorkerPublisher;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster();
    const env = {
      REDIS_URL: cluster.urls,
      TETHER_REDIS_CLUSTER: "on",
      TETHER_API_KEY: API_KEY,
      TETHER_SESSION_CHECK_INTERVAL: "300ms",
      // Each session's existence checked every round, as on one Redis (the sweep: idle-cluster.test.ts).
      TETHER_SESSION_SWEEP_INTERVAL: "300ms",
    };
    [a, b] = await Promise.all([startInstance(env), startInstance(env)]);
    publisher = await createPublisher(
      loadConfig({ REDIS_URL: cluster.urls, TETHER_REDIS_CLUSTER: "on", LOG_LEVEL: "silent" }),
    );
  }, 90_000);

  afterAll(async () => {
    for (const t of clients) t.client.close();
    await publisher?.close();
    await Promise.all([a?.kill(), b?.kill()]);
    await cluster?.close();
  });

  it("a login on A, a token from A, a socket on B; the token works once; logout on A ends B's socket", async () => {
    const session = await login(a.url, API_KEY);
    const token = await wsToken(a.url, session);
    const socket = await connectRaw(b.url, { token });
    expect((await refusal(a.url, { token })).data?.code).toBe("TOKEN_INVALID");
    const ended = nextEvent(socket, "session:ended");
    await post(`${a.url}/api/auth/logout`, undefined, { cookie: session.cookie });
    expect(await ended).toEqual({ reason: "logout" });
  });

  it("events from a worker and a job reach the user on both instances, and a reconnect replays what it missed", async () => {
    const onA = startClient(a.url);
    await onA.client.login(API_KEY);
    const onB = startClient(b.url, { jar: onA.jar });
    clients.push(onA, onB);
    onA.client.connect();
    onB.client.connect();
    await Promise.all([onA.welcomed(1), onB.welcomed(1)]);
    const steps: number[] = [];
    onB.client.on("job:progress", (p: JobProgressPayload) => steps.push(p.step));
    const done = Promise.all([nextEvent(onA.client, "job:done"), nextEvent(onB.client, "job:done")]);
    expect((await onA.post("/api/jobs", { steps: 5, intervalMs: 10 })).status).toBe(202);
    await done;
    await waitFor("B to see the job", () => steps.length === 5);

    onB.client.close();
    await publisher.publish({ user: "admin" }, "job:progress", { jobId: "while-away", step: 6, steps: 6 });
    const recovery = new Promise<RecoveryPayload>((resolve) => onB.client.once("recovery", resolve));
    onB.client.connect();
    expect(await recovery).toEqual({ recovered: true, missed: 1 });
    await waitFor("the missed event", () => steps.length === 6);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("a session deleted in the cluster is noticed on every instance", async () => {
    const t = startClient(a.url);
    clients.push(t);
    await t.client.login(API_KEY);
    t.client.connect();
    await t.welcomed(1);
    const sid = decodeURIComponent((await t.jar.getCookieString(a.url)).split("=")[1] ?? "")
      .slice(2)
      .split(".")[0];
    await cluster.client().del(`tether:sess:${sid}`);
    await t.waitForState("unauthenticated");
  });
});
