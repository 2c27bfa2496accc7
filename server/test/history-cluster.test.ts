import { once } from "node:events";
import { startRedisCluster, type TestRedisCluster } from "@tether/testkit/redis-cluster";
import { waitFor } from "@tether/testkit/wait";
import type { Cluster } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisHistoryStore, streamChannel } from "../src/store/history-redis.js";
import { connectRedis, type RedisClient, type RedisTarget } from "../src/store/redis-connection.js";
import { shardConnection, slotOf } from "../src/store/subscription-probe.js";
import type { AppendedEvent, HistoryLimits } from "../src/store/types.js";

const LIMITS: HistoryLimits = { windowMs: 60_000, maxLength: 100, lastIdTtlMs: 60_000 };
const silent = pino({ level: "silent" });

/** No command of the Cluster client is waiting in its retry queue (ioredis internals). */
function retriesIdle(client: RedisClient): boolean {
  const timeouts = (client as unknown as { delayQueue?: { timeouts?: Record<string, unknown> } }).delayQueue?.timeouts;
  return Object.values(timeouts ?? {}).every((timeout) => !timeout);
}

/** The history store's subscriptions on a real Redis Cluster, when a shard subscriber is dropped under them. */
describe("HistoryStore on a Redis Cluster, subscriptions across a dropped shard subscriber", () => {
  let cluster: TestRedisCluster;
  let commands: RedisClient;
  let sub: RedisClient;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    const target: RedisTarget = { mode: "cluster", urls: cluster.urls.split(",") };
    [commands, sub] = await Promise.all([
      connectRedis(target, "commands", 2_000, silent),
      connectRedis(target, "sub", 2_000, silent, true),
    ]);
  }, 90_000);

  afterAll(async () => {
    commands?.disconnect();
    sub?.disconnect();
    await cluster?.close();
  });

  it("a stream left and joined again while its shard subscriber is dropped stays heard (the leave is not re-sent after the join)", async () => {
    const store = new RedisHistoryStore(commands, sub, LIMITS);
    const seen: AppendedEvent[] = [];
    const stop = await store.subscribe({ onEvent: (event) => seen.push(event), onResync: () => {} });
    const s = `user:rejoin-${Math.random().toString(36).slice(2)}`;
    await store.watch(s);
    const node = (sub as Cluster).slots[slotOf(streamChannel(s))]?.[0] ?? "";
    const connection = shardConnection(sub as Cluster, node);
    expect(connection?.status).toBe("ready");

    // The last socket of the stream leaves as Redis drops the shard's subscriber (a freeze past the
    // output-buffer limit): its SUNSUBSCRIBE dies unanswered with the connection.
    const replaced = once(sub, "subscribersReady");
    store.unwatch(s);
    connection?.stream.destroy();
    // The client is back on this instance as soon as a subscriber is: it joins the stream again.
    await replaced;
    await store.watch(s);

    // Heard once nothing the Cluster client holds back for a retry is left (a retried SUNSUBSCRIBE
    // would land after the join): an event appended then arrives.
    let appended: string | undefined;
    await waitFor(
      "an event of the stream heard after the leave and the join, with no subscription command pending",
      async () => {
        if (!retriesIdle(sub)) return false;
        if (appended && seen.some((event) => event.id === appended)) return true;
        appended = (await store.append(s, "tick", "{}")).id;
        return false;
      },
      { timeoutMs: 10_000, intervalMs: 250 },
    );
    stop();
  });
});
