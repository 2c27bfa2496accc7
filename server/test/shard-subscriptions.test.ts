/**
 * Sharded subscriptions that fail unconfirmed (their connection dropped under
 * them) are set right after the reconnect, to what is wanted then: for the
 * streams' channels (HistoryStore) and the session-end topics (TopicBus) alike,
 * which share ShardSubscriptions. Real redis-server; the subscriber connection
 * is cut while Redis holds its commands unanswered (CLIENT PAUSE).
 */
import { once } from "node:events";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import type { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisHistoryStore } from "../src/store/history-redis.js";
import { connectRedis, type RedisClient } from "../src/store/redis-connection.js";
import { RedisTopicBus } from "../src/store/topic-bus.js";

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => redis?.close());

/** A session-end bus on this subscriber connection, publishing through `pub`. */
const topicBus = (sub: RedisClient, pub: Redis) =>
  new RedisTopicBus(
    (channel, message) => pub.spublish(channel, message) as Promise<number>,
    sub,
    pino({ level: "silent" }),
  );

/** A subscriber connection of the test's own, as an instance makes it. */
const subscriber = () =>
  connectRedis({ mode: "standalone", url: redis.url }, "sub", 2_000, pino({ level: "silent" }), true);

/** What either owner offers the scenarios: watch a name, stop watching it, and whether a message on it is heard. */
interface Listener {
  /** A promise when the owner reports the subscribe's outcome (the history store does; the bus logs it). */
  watch(name: string): Promise<void> | undefined;
  unwatch(name: string): void;
  /** Publishes on the name and says whether anything on it was heard yet. */
  heard(name: string): Promise<boolean>;
  /** Forgets what was heard on the name. */
  forget(name: string): void;
  stop(): void;
}

const owners: [string, (sub: RedisClient) => Promise<Listener>][] = [
  [
    "the streams' channels (HistoryStore)",
    async (sub) => {
      const store = new RedisHistoryStore(redis.client(), sub, { windowMs: 60_000, maxLength: 5, lastIdTtlMs: 60_000 });
      const seen = new Set<string>();
      const stop = await store.subscribe({ onEvent: (event) => seen.add(event.stream), onResync: () => {} });
      return {
        watch: (name) => store.watch(name),
        unwatch: (name) => store.unwatch(name),
        heard: async (name) => {
          await store.append(name, "tick", "{}");
          return seen.has(name);
        },
        forget: (name) => seen.delete(name),
        stop,
      };
    },
  ],
  [
    "the session-end topics (TopicBus)",
    async (sub) => {
      const pub = redis.client();
      const bus = topicBus(sub, pub);
      const seen = new Set<string>();
      bus.listen((topic) => seen.add(topic));
      return {
        watch: (name) => void bus.watch(name),
        unwatch: (name) => bus.unwatch(name),
        heard: async (name) => {
          await bus.publish(name, { ended: true });
          return seen.has(name);
        },
        forget: (name) => seen.delete(name),
        stop: () => pub.disconnect(),
      };
    },
  ],
];

describe.each(owners)("sharded subscriptions that fail unconfirmed: %s", (_name, start) => {
  /** An owner on a subscriber connection of its own, which the test cuts. */
  async function listening() {
    const sub = await subscriber();
    return { sub, listener: await start(sub) };
  }

  /** Holds Redis's answers while the subscriber connection is cut under what was just sent. */
  async function cutUnanswered(sub: RedisClient, send: () => void): Promise<void> {
    await redis.client().client("PAUSE", "500", "ALL");
    send();
    await new Promise((resolve) => setImmediate(resolve)); // a batched SSUBSCRIBE goes out
    (sub as Redis).stream.destroy();
  }

  it("a subscribe that dies with its connection is sent again after the reconnect: the name is heard", async () => {
    const { sub, listener } = await listening();
    const name = `user:resend-${Math.random().toString(36).slice(2)}`;
    let watched: Promise<boolean> | undefined;
    // ioredis subscribes again after a reconnect only to what Redis had confirmed.
    await cutUnanswered(sub, () => {
      watched = listener.watch(name)?.then(
        () => true,
        () => false,
      );
    });
    if (watched) expect(await watched).toBe(false);
    await waitFor("a message on the name heard after the reconnect", () => listener.heard(name), {
      timeoutMs: 10_000,
      intervalMs: 200,
    });
    listener.stop();
    sub.disconnect();
  });

  it("an unsubscribe and a subscribe of one name that both die with their connection leave it heard (the subscribe is the later wish)", async () => {
    const { sub, listener } = await listening();
    const name = `user:rewatch-${Math.random().toString(36).slice(2)}`;
    await listener.watch(name);
    await waitFor("heard before the cut", () => listener.heard(name));
    // A client leaves the instance and comes back to it while its subscriber connection is being
    // dropped: the SUNSUBSCRIBE and then the SSUBSCRIBE fail unanswered, in that order.
    const back = once(sub, "ready");
    await cutUnanswered(sub, () => {
      listener.unwatch(name);
      void listener.watch(name)?.catch(() => {});
    });
    // The re-sends go out as "ready" is emitted (the owner's listener came first); a PING behind them
    // answers once Redis has them all.
    await back;
    await (sub as Redis).ping();
    // What was in flight went with the old connection.
    listener.forget(name);
    await waitFor("a message on the name heard after the reconnect and the re-sends", () => listener.heard(name), {
      timeoutMs: 10_000,
      intervalMs: 200,
    });
    listener.stop();
    sub.disconnect();
  });
});

describe("a watched session topic is heard from the moment watch() resolves", () => {
  it("watch() resolves once Redis holds the subscription (the handshake awaits it: a logout right after connect is heard)", async () => {
    const sub = await subscriber();
    const pub = redis.client();
    const bus = topicBus(sub, pub);
    const heard: string[] = [];
    bus.listen((topic) => heard.push(topic));
    const topics = Array.from({ length: 20 }, (_, i) => `session:t${i}-${Math.random().toString(36).slice(2)}`);
    for (const topic of topics) {
      await bus.watch(topic);
      // Nothing between the resolved watch and the publish: no wait, no retry.
      const [, subscribers] = (await pub.call("PUBSUB", "SHARDNUMSUB", `tether:end:${topic}`)) as [string, number];
      expect(subscribers).toBe(1);
      await bus.publish(topic, { reason: "logout" });
    }
    await waitFor("every end heard", () => topics.every((topic) => heard.includes(topic)));
    // A second watch of a topic whose subscribe is settled resolves at once, and the counts hold.
    await bus.watch(topics[0] ?? "");
    bus.unwatch(topics[0] ?? "");
    sub.disconnect();
    pub.disconnect();
  });
});
