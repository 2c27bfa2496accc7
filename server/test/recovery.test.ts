import type { JobProgressPayload, RecoveryPayload } from "@tether/shared";
import { connectedClient, type startClient, type TestClient } from "@tether/testkit/client";
import { connectRaw, login, post, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startProxy, type TestProxy } from "@tether/testkit/proxy";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { idleFor, nextEvent, waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublisher, loadConfig, type WorkerPublisher } from "../src/index.js";

const API_KEY = "recovery-test-api-key-0123456789";
const PUBLISH_KEY = "recovery-test-publish-key-0123456789";

describe("no lost events across reconnects, cuts and crashes", () => {
  let redis: TestRedis;
  let a: TestInstance;
  let b: TestInstance;
  let proxy: TestProxy;
  let publisher: WorkerPublisher;
  const clients: TestClient[] = [];

  const connected = (url: string, options: Parameters<typeof startClient>[1] = {}) =>
    connectedClient(url, API_KEY, clients, options);

  beforeAll(async () => {
    redis = await startRedis();
    const env = {
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_PUBLISH_KEY: PUBLISH_KEY,
      TETHER_RECOVERY_MAX_EVENTS: "20000",
    };
    [a, b] = await Promise.all([startInstance(env), startInstance(env)]);
    proxy = await startProxy([a.port, b.port]);
    // This test process is a worker of its own: it runs no Socket.IO server.
    publisher = await createPublisher(
      loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent", TETHER_RECOVERY_MAX_EVENTS: "20000" }),
    );
  });

  afterAll(async () => {
    for (const t of clients) t.client.close();
    await publisher?.close();
    await proxy?.close();
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.close();
  });

  it("a 600-step job: three network cuts and a kill -9 of the client's instance lose nothing, duplicate nothing", async () => {
    const t = await connected(proxy.url);
    const home = t.welcomes[0]?.instance;
    const [clientHome, jobHome] = (await instanceOf(a)) === home ? [a, b] : [b, a];
    const steps: number[] = [];
    t.client.on("job:progress", (p: JobProgressPayload) => steps.push(p.step));
    const done = new Promise((resolve) => t.client.on("job:done", resolve));
    // The job runs on the other instance, so killing the client's instance does not kill the job.
    const cookie = await t.jar.getCookieString(jobHome.url);
    expect((await post(`${jobHome.url}/api/jobs`, { steps: 600, intervalMs: 20 }, { cookie })).status).toBe(202);

    for (let cut = 1; cut <= 3; cut++) {
      await waitFor(`progress before cut ${cut}`, () => steps.length >= cut * 100);
      proxy.refusing = true;
      proxy.cut();
      await idleFor(1_000);
      proxy.refusing = false;
      await t.welcomed(cut + 1);
    }
    await waitFor("progress before the kill", () => steps.length >= 400);
    await clientHome.kill();
    await done;
    expect(steps).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    expect(t.states).not.toContain("unauthenticated");
    await clientHome.restart();
    // The job alone is 12 s of steps; cuts, a kill and a restart on a loaded machine take their time too.
  }, 120_000);

  it("two tabs of one user: the one that was away recovers what it missed, the other is unaffected", async () => {
    const awayProxy = await startProxy([b.port]);
    const stay = await connected(a.url);
    const away = await connected(awayProxy.url, { jar: stay.jar });
    const seen = { stay: [] as number[], away: [] as number[] };
    stay.client.on("job:progress", (p: JobProgressPayload) => seen.stay.push(p.step));
    away.client.on("job:progress", (p: JobProgressPayload) => seen.away.push(p.step));
    const recovery = new Promise<RecoveryPayload>((resolve) => away.client.on("recovery", resolve));
    awayProxy.refusing = true;
    awayProxy.cut();
    for (let step = 1; step <= 50; step++) {
      await publisher.publish({ user: "admin" }, "job:progress", { jobId: "tabs", step, steps: 50 });
    }
    await waitFor("the staying tab to get everything", () => seen.stay.length === 50);
    awayProxy.refusing = false;
    expect(await recovery).toEqual({ recovered: true, missed: 50 });
    await waitFor("the away tab to catch up", () => seen.away.length === 50);
    expect(seen.away).toEqual(seen.stay);
    await awayProxy.close();
  });

  it("a burst of 10,000 events while disconnected is replayed in order, in pages, once", async () => {
    const t = await connected(a.url);
    let received = 0;
    let inOrder = true;
    t.client.on("job:progress", (p: JobProgressPayload) => {
      received += 1;
      if (p.step !== received) inOrder = false;
    });
    t.client.close();
    // Pipelined in order on one connection, so stored (and replayed) in step order.
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(
        Array.from({ length: 500 }, (_, i) => {
          const step = batch * 500 + i + 1;
          return publisher.publish({ user: "admin" }, "job:progress", { jobId: "burst", step, steps: 10_000 });
        }),
      );
    }
    const recovery = new Promise<RecoveryPayload>((resolve) => t.client.once("recovery", resolve));
    t.client.connect();
    expect(await recovery).toEqual({ recovered: true, missed: 10_000 });
    await waitFor("all 10,000", () => received === 10_000, { timeoutMs: 60_000 });
    expect(inOrder).toBe(true);
  }, 120_000);

  it("a worker's events reach the user's sockets on both instances", async () => {
    const onA = await connected(a.url);
    const onB = await connected(b.url, { jar: onA.jar });
    const got = [nextEvent(onA.client, "job:done"), nextEvent(onB.client, "job:done")];
    const offset = await publisher.publish({ user: "admin" }, "job:done", { jobId: "from-worker" });
    expect(await Promise.all(got)).toEqual([
      { jobId: "from-worker", offset },
      { jobId: "from-worker", offset },
    ]);
  });

  it("POST /api/publish: bearer publish key only, validated, reaches the user", async () => {
    const t = await connected(b.url);
    const got = nextEvent(t.client, "job:done");
    const headers = { authorization: `Bearer ${PUBLISH_KEY}` };
    const ok = await post(
      `${a.url}/api/publish`,
      { target: { user: "admin" }, event: "job:done", data: { jobId: "http" } },
      headers,
    );
    expect(ok.status).toBe(202);
    expect(await got).toEqual({ jobId: "http", offset: ok.body?.offset });
    const bad = [
      [{ target: { user: "admin" }, event: "job:done", data: {} }, { authorization: `Bearer ${API_KEY}` }, 401],
      [{ target: { user: "admin" }, event: "job:done", data: {} }, {}, 401],
      [{ target: { user: "admin" }, event: "welcome", data: {} }, headers, 400],
      [{ target: { nobody: "x" }, event: "x", data: {} }, headers, 400],
      [{ target: { user: "admin" }, event: "x", data: "not an object" }, headers, 400],
    ] as const;
    for (const [body, h, status] of bad) expect((await post(`${a.url}/api/publish`, body, h)).status).toBe(status);
  });

  it("bad offsets in the handshake: a clear recovered:false, the connection stands, no one else's events", async () => {
    const session = await login(a.url, API_KEY);
    await publisher.publish({ user: "bob" }, "job:done", { jobId: "bobs-secret" });
    const bobsOffset = await publisher.publish({ user: "bob" }, "job:done", { jobId: "bobs-secret" });
    const cases: [unknown, RecoveryPayload][] = [
      ["not-an-offset", { recovered: false, missed: 0, reason: "invalid" }],
      [{ $gt: "" }, { recovered: false, missed: 0, reason: "invalid" }],
      [42, { recovered: false, missed: 0, reason: "invalid" }],
      ["999999999999999-0", { recovered: false, missed: 0, reason: "invalid" }],
    ];
    const recoveryOf = (socket: WelcomedSocket) =>
      waitFor("recovery", () => socket.received.find(([event]) => event === "recovery")?.[1]);
    for (const [offset, expected] of cases) {
      const socket = await connectRaw(a.url, { token: await wsToken(a.url, session), offset });
      expect(await recoveryOf(socket)).toEqual({ ...expected, offset: expect.any(String) });
      expect(await socket.emitWithAck("echo", "still connected")).toBe("still connected");
      socket.close();
    }
    // Another user's offset is only a position in time: the replay comes from the caller's own stream.
    const socket = await connectRaw(a.url, { token: await wsToken(a.url, session), offset: bobsOffset });
    await recoveryOf(socket);
    expect(JSON.stringify(socket.received)).not.toContain("bobs-secret");
    socket.close();
  });

  async function instanceOf(instance: TestInstance): Promise<string> {
    const t = await connected(instance.url);
    t.client.close();
    return t.welcomes[0]?.instance ?? "";
  }
});
