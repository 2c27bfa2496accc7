import { randomUUID } from "node:crypto";
import { ErrorCode, parseOffset } from "@tether/shared";
import { connectRaw, login, post, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { freePort } from "@tether/testkit/ports";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { startRedisCluster, type TestRedisCluster } from "@tether/testkit/redis-cluster";
import { waitFor } from "@tether/testkit/wait";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublisher, loadConfig, TetherError, type WorkerPublisher } from "../src/index.js";
import { StreamPublisher } from "../src/realtime/publisher.js";
import { MemoryHistoryStore } from "../src/store/history-memory.js";

const API_KEY = "idempotency-test-api-key-0123456789";
const PUBLISH_KEY = "idempotency-test-publish-key-0123456789";
/** The API-key login's user: every socket here is one of its tabs. */
const USER = "admin";
const USER_STREAM = `tether:stream:{user:${USER}}`;

/** Makes a standalone Redis answer READONLY to every write, as a primary demoted by a failover does. */
async function readOnly(admin: Redis): Promise<void> {
  // A primary that nothing listens at: the replica keeps its data, and never syncs.
  await admin.replicaof("127.0.0.1", await freePort());
  await expect(admin.set("tether:test:probe", "1")).rejects.toThrow(/^READONLY/);
}
async function writable(admin: Redis): Promise<void> {
  await admin.replicaof("NO", "ONE");
}
/** How many writes Redis refused with READONLY so far. */
async function readOnlyRefusals(admin: Redis): Promise<number> {
  const match = /errorstat_READONLY:count=(\d+)/.exec(await admin.info("errorstats"));
  return Number(match?.[1] ?? 0);
}

/** The offsets of `event` with `tag` a raw socket received, in order. */
function received(socket: WelcomedSocket, event: string, tag: string): string[] {
  return socket.received
    .filter(([name, payload]) => name === event && (payload as { tag?: string }).tag === tag)
    .map(([, payload]) => (payload as { offset: string }).offset);
}

describe("exactly once from the publisher's call", () => {
  let redis: TestRedis;
  let admin: Redis;
  let a: TestInstance;
  let b: TestInstance;
  let worker: WorkerPublisher;
  let other: WorkerPublisher;
  let socket: WelcomedSocket;

  const workerConfig = (env: Record<string, string> = {}) =>
    loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent", ...env });
  const httpPublish = (url: string, body: object, key?: string) =>
    post(`${url}/api/publish`, body, {
      authorization: `Bearer ${PUBLISH_KEY}`,
      ...(key === undefined ? {} : { "idempotency-key": key }),
    });

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
    const env = { REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_PUBLISH_KEY: PUBLISH_KEY };
    [a, b] = await Promise.all([startInstance(env), startInstance(env)]);
    [worker, other] = await Promise.all([createPublisher(workerConfig()), createPublisher(workerConfig())]);
    socket = await connectRaw(b.url, { token: await wsToken(b.url, await login(b.url, API_KEY)) });
  });

  afterAll(async () => {
    socket?.close();
    await Promise.all([worker?.close(), other?.close()]);
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.close();
  });

  it("the same id published twice in a row appends once; both calls answer the first offset", async () => {
    const tag = randomUUID();
    const id = `order-${tag}`;
    const before = await admin.xlen(USER_STREAM);
    const first = await worker.publish({ user: USER }, "order:paid", { tag }, { id });
    const again = await worker.publish({ user: USER }, "order:paid", { tag }, { id });
    expect(again).toBe(first);
    expect(await admin.xlen(USER_STREAM)).toBe(before + 1);
    await waitFor("the event at the raw client", () => received(socket, "order:paid", tag).length === 1);
    // A later event proves the duplicate was not merely late.
    await worker.publish({ user: USER }, "order:paid", { tag: `${tag}-after` });
    await waitFor("the next event", () => received(socket, "order:paid", `${tag}-after`).length === 1);
    expect(received(socket, "order:paid", tag)).toEqual([first]);
  });

  it("concurrent publishes of one id from two workers and both instances' HTTP route append once, all answering the first offset", async () => {
    const tag = randomUUID();
    const id = `concurrent-${tag}`;
    const body = { target: { user: USER }, event: "order:shipped", data: { tag } };
    const before = await admin.xlen(USER_STREAM);
    const answers = await Promise.all([
      ...Array.from({ length: 5 }, () => worker.publish({ user: USER }, "order:shipped", { tag }, { id })),
      ...Array.from({ length: 5 }, () => other.publish({ user: USER }, "order:shipped", { tag }, { id })),
      ...[a, b, a, b].map(async (instance) => {
        const res = await httpPublish(instance.url, body, id);
        expect(res.status).toBe(202);
        return res.body?.offset as string;
      }),
    ]);
    expect(new Set(answers).size).toBe(1);
    expect(await admin.xlen(USER_STREAM)).toBe(before + 1);
    await worker.publish({ user: USER }, "order:shipped", { tag: `${tag}-after` });
    await waitFor("the next event", () => received(socket, "order:shipped", `${tag}-after`).length === 1);
    expect(received(socket, "order:shipped", tag)).toEqual([answers[0]]);
  });

  it("a reused id with another body is refused (INVALID_INPUT; 422 over HTTP), and appends nothing", async () => {
    const tag = randomUUID();
    const id = `reused-${tag}`;
    const first = await worker.publish({ user: USER }, "order:paid", { tag, amount: 1 }, { id });
    const before = await admin.xlen(USER_STREAM);
    const refused = await worker.publish({ user: USER }, "order:paid", { tag, amount: 2 }, { id }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(TetherError);
    expect((refused as TetherError).code).toBe(ErrorCode.InvalidInput);
    const otherEvent = await other
      .publish({ user: USER }, "order:refunded", { tag, amount: 1 }, { id })
      .catch((err: unknown) => err);
    expect((otherEvent as TetherError).code).toBe(ErrorCode.InvalidInput);
    const res = await httpPublish(a.url, { target: { user: USER }, event: "order:paid", data: { tag, amount: 3 } }, id);
    expect(res.status).toBe(422);
    expect(res.body?.error).toMatchObject({ code: ErrorCode.InvalidInput });
    expect(await admin.xlen(USER_STREAM)).toBe(before);
    // The first body is still the one: its retry answers its offset.
    expect(await worker.publish({ user: USER }, "order:paid", { tag, amount: 1 }, { id })).toBe(first);
  });

  it("POST /api/publish retried with the same Idempotency-Key answers 2xx and the same offset, on either instance", async () => {
    const tag = randomUUID();
    const key = `"${randomUUID()}"`; // the draft's form: a structured-field string
    const body = { target: { user: USER }, event: "invoice:sent", data: { tag } };
    const before = await admin.xlen(USER_STREAM);
    const first = await httpPublish(a.url, body, key);
    const retry = await httpPublish(b.url, body, key);
    expect(first.status).toBe(202);
    expect(retry.status).toBe(202);
    expect(retry.body?.offset).toBe(first.body?.offset);
    expect(await admin.xlen(USER_STREAM)).toBe(before + 1);
    // Without a key, every request is a publish of its own.
    const unkeyed = await Promise.all([httpPublish(a.url, body), httpPublish(a.url, body)]);
    expect(unkeyed[0].body?.offset).not.toBe(unkeyed[1].body?.offset);
    const bad = await httpPublish(a.url, body, "x".repeat(300));
    expect(bad.status).toBe(400);
  });

  it("a worker publish during a READONLY window is retried under its id and lands once, after the window", async () => {
    const tag = randomUUID();
    const before = await admin.xlen(USER_STREAM);
    await readOnly(admin);
    const refusedBefore = await readOnlyRefusals(admin);
    let settled = false;
    const publishing = worker.publish({ user: USER }, "report:ready", { tag }).finally(() => {
      settled = true;
    });
    // Retried, not failed: still pending after Redis refused it three times.
    await waitFor("three refused attempts", async () => (await readOnlyRefusals(admin)) >= refusedBefore + 3);
    expect(settled).toBe(false);
    await writable(admin);
    const offset = await publishing;
    expect(parseOffset(offset)).toBeDefined();
    expect(await admin.xlen(USER_STREAM)).toBe(before + 1);
    await waitFor("the event at the raw client", () => received(socket, "report:ready", tag).length === 1);
  });

  it("past TETHER_PUBLISH_DEADLINE a worker publish rejects UNAVAILABLE; a later retry under the same id lands once", async () => {
    const short = await createPublisher(workerConfig({ TETHER_PUBLISH_DEADLINE: "600ms" }));
    try {
      const tag = randomUUID();
      const id = `deadline-${tag}`;
      const before = await admin.xlen(USER_STREAM);
      await readOnly(admin);
      const started = Date.now();
      const failed = await short.publish({ user: USER }, "report:ready", { tag }, { id }).catch((err: unknown) => err);
      expect((failed as TetherError).code).toBe(ErrorCode.Unavailable);
      expect(Date.now() - started).toBeGreaterThanOrEqual(500);
      await writable(admin);
      const offset = await short.publish({ user: USER }, "report:ready", { tag }, { id });
      expect(await short.publish({ user: USER }, "report:ready", { tag }, { id })).toBe(offset);
      expect(await admin.xlen(USER_STREAM)).toBe(before + 1);
      await waitFor("the event at the raw client", () => received(socket, "report:ready", tag).length === 1);
    } finally {
      await writable(admin);
      await short.close();
    }
  });

  it("TETHER_PUBLISH_REPLICAS=1 acknowledges only once a replica confirmed; without one, UNAVAILABLE and still once", async () => {
    const durable = await createPublisher(
      workerConfig({
        TETHER_PUBLISH_REPLICAS: "1",
        // Long enough for a busy machine's replica to confirm the first; the second waits it out.
        TETHER_PUBLISH_DEADLINE: "3s",
        TETHER_REDIS_COMMAND_TIMEOUT: "300ms",
      }),
    );
    const replica = await startRedis({ args: ["--replicaof", "127.0.0.1", String(redis.port)] });
    try {
      const tag = randomUUID();
      const id = `durable-${tag}`;
      const replicaClient = replica.client();
      await waitFor(
        "the replica in sync, as both sides see it",
        async () =>
          (await replicaClient.info("replication")).includes("master_link_status:up") &&
          /slave0:.*state=online/.test(await admin.info("replication")),
      );
      const offset = await durable.publish({ user: USER }, "ledger:entry", { tag }, { id });
      // Acknowledged after WAIT: the replica holds it already.
      const onReplica = await replicaClient.xrange(USER_STREAM, parseOffset(offset)!.id, parseOffset(offset)!.id);
      expect(onReplica).toHaveLength(1);
      // The replica leaves (promoted elsewhere, say): the primary has none.
      await replicaClient.replicaof("NO", "ONE");
      await waitFor("the primary to see no replica", async () =>
        (await admin.info("replication")).includes("connected_slaves:0"),
      );
      const before = await admin.xlen(USER_STREAM);
      const unconfirmed = await durable
        .publish({ user: USER }, "ledger:entry", { tag: `${tag}-2` }, { id: `${id}-2` })
        .catch((err: unknown) => err);
      expect((unconfirmed as TetherError).code).toBe(ErrorCode.Unavailable);
      // Written once (on the primary alone), whatever the retries.
      expect(await admin.xlen(USER_STREAM)).toBe(before + 1);
    } finally {
      await durable.close();
      await replica.close();
    }
  });
});

describe("the in-process publisher (embedded store)", () => {
  it("takes an id too: a retry answers the first offset, another body under it is refused", async () => {
    const store = new MemoryHistoryStore({ windowMs: 60_000, maxLength: 100, lastIdTtlMs: 60_000 });
    const publisher = new StreamPublisher(store);
    const first = await publisher.publish({ room: "r" }, "msg", { n: 1 }, { id: "m1" });
    expect(await publisher.publish({ room: "r" }, "msg", { n: 1 }, { id: "m1" })).toBe(first);
    await expect(publisher.publish({ room: "r" }, "msg", { n: 2 }, { id: "m1" })).rejects.toMatchObject({
      code: ErrorCode.InvalidInput,
      status: 422,
    });
    // Per stream: the same id on another target is another publish.
    expect(await publisher.publish({ room: "s" }, "msg", { n: 1 }, { id: "m1" })).not.toBe(first);
    expect((await store.readAfter("room:r", "0-0", 10)).entries).toHaveLength(1);
  });
});

describe("on a Redis Cluster", () => {
  let cluster: TestRedisCluster;
  let publisher: WorkerPublisher;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    publisher = await createPublisher(
      loadConfig({ REDIS_URL: cluster.urls, TETHER_REDIS_CLUSTER: "on", LOG_LEVEL: "silent" }),
    );
  }, 90_000);

  afterAll(async () => {
    await publisher?.close();
    await cluster?.close();
  });

  it("a publish id lives in its stream's slot: retries of one id on streams across the shards append once each", async () => {
    const client = cluster.client();
    // Users whose streams hash to different slots (and so, mostly, shards).
    const users = Array.from({ length: 6 }, (_, i) => `cluster-user-${i}-${randomUUID()}`);
    const answers = await Promise.all(
      users.map(async (user) => {
        const calls = Array.from({ length: 4 }, () =>
          publisher.publish({ user }, "order:paid", { user }, { id: "same-id" }),
        );
        return new Set(await Promise.all(calls));
      }),
    );
    for (const offsets of answers) expect(offsets.size).toBe(1);
    for (const user of users) expect(await client.xlen(`tether:stream:{user:${user}}`)).toBe(1);
  });
});
