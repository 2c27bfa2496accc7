import { EventEmitter } from "node:events";
import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import type { RedisClient } from "./redis-connection.js";
import { ShardSubscriptions } from "./shard-subscriptions.js";
import { shardConnection, shardConnections, slotOf } from "./subscription-probe.js";
import type { TopicBus } from "./types.js";

/** What `watch` returns for a topic already heard: callers may skip waiting on it. */
export const SETTLED: Promise<void> = Promise.resolve();

/** The sharded channel of a topic (a session's room tag): `tether:end:<topic>`. */
export const TOPIC_CHANNEL_PREFIX = "tether:end:";
export const topicChannel = (topic: string) => `${TOPIC_CHANNEL_PREFIX}${topic}`;

/** Which topics a restoration covers: those it says true for; undefined: every topic. */
export type RestoredTopics = ((topic: string) => boolean) | undefined;

/** A Cluster's shards as the subscriber saw them: each slot's master, and each master's subscriber connection. */
interface ShardView {
  masters: (string | undefined)[];
  connections: Map<string, unknown>;
}

function shardView(cluster: Cluster): ShardView {
  const masters = cluster.slots.map((nodes) => nodes?.[0]);
  const connections = new Map<string, unknown>();
  for (const node of new Set(masters)) if (node) connections.set(node, shardConnection(cluster, node));
  return { masters, connections };
}

/**
 * The slots whose messages may have been lost between two views: those that moved to another
 * master, and those of a master whose subscriber connection is new (a replaced one).
 */
function changedSlots(before: ShardView, after: ShardView): (slot: number) => boolean {
  return (slot) => {
    const node = after.masters[slot];
    return (
      node === undefined ||
      node !== before.masters[slot] ||
      after.connections.get(node) !== before.connections.get(node)
    );
  };
}

/** Watches and unwatches of one topic, counted: the channel is subscribed while any watch holds. */
class WatchCounts {
  private readonly counts = new Map<string, number>();

  /** True when this is the topic's first watch. */
  add(topic: string): boolean {
    const n = (this.counts.get(topic) ?? 0) + 1;
    this.counts.set(topic, n);
    return n === 1;
  }

  /** True when this was the topic's last watch. */
  remove(topic: string): boolean {
    const n = (this.counts.get(topic) ?? 0) - 1;
    if (n > 0) this.counts.set(topic, n);
    else this.counts.delete(topic);
    return n === 0;
  }

  has(topic: string): boolean {
    return this.counts.has(topic);
  }
}

/**
 * Messages about one topic over sharded pub/sub (SPUBLISH, SSUBSCRIBE): each
 * goes to the Redis node of its channel and only to the instances that watch
 * it, not to every instance. The channels are kept subscribed through drops and
 * failovers like the streams' (ShardSubscriptions: one SSUBSCRIBE per burst on
 * one Redis, failed commands set right at the next reconnect). A message
 * published while a channel was not heard is lost: what a topic's message says
 * must also be found another way: when the channels are heard again, `onRestored`
 * says so (a session's end: every connected session is checked at once).
 */
export class RedisTopicBus implements TopicBus {
  private readonly watches = new WatchCounts();
  private readonly channels: ShardSubscriptions;
  /** Topics whose subscribe is in flight. */
  private readonly subscribing = new Map<string, Promise<void>>();
  private handler: ((topic: string, message: unknown) => void) | undefined;
  private readonly restored: ((topics: RestoredTopics) => void)[] = [];
  /** A Cluster's shards at the last restoration. */
  private shards: ShardView | undefined;

  constructor(
    /** SPUBLISH that rejects on failure: the caller retries until it is sent. */
    private readonly spublish: (channel: string, message: string) => Promise<number>,
    sub: RedisClient,
    private readonly logger: Logger,
  ) {
    // Subscribed again without a reconnect: what was published on those channels meanwhile was lost.
    this.channels = new ShardSubscriptions(sub, (channels) => {
      const again = new Set(channels);
      this.tellRestored((topic) => again.has(topicChannel(topic)));
    });
    sub.on("smessage", (channel: string, text: string) => {
      if (!channel.startsWith(TOPIC_CHANNEL_PREFIX)) return;
      const topic = channel.slice(TOPIC_CHANNEL_PREFIX.length);
      if (!this.watches.has(topic)) return;
      try {
        this.handler?.(topic, JSON.parse(text));
      } catch (err) {
        this.logger.warn({ err }, "bad topic message");
      }
    });
    // A reconnect (every "ready" after the first: the connection was ready before this) or a Cluster's
    // replaced shard subscriber: ioredis subscribes again, the failed (un)subscribes are re-sent, and a
    // PING on each subscriber connection answers after them; then the channels are heard again: all
    // of them after a reconnect, on a Cluster those of the slots that moved or got a new subscriber.
    const resend = (topics: RestoredTopics) => {
      const pings = sub.isCluster
        ? shardConnections(sub as Cluster).map((connection) => connection.ping())
        : [(sub as Redis).ping()];
      void Promise.allSettled([this.channels.resend(), ...pings]).then(() => this.tellRestored(topics));
    };
    if (sub.isCluster) this.shards = shardView(sub as Cluster);
    sub.on("ready", () => {
      if (sub.isCluster) this.shards = shardView(sub as Cluster);
      resend(undefined);
    });
    if (sub.isCluster)
      sub.on("subscribersReady", () => {
        const before = this.shards;
        this.shards = shardView(sub as Cluster);
        const changed = before ? changedSlots(before, this.shards) : () => true;
        resend((topic) => changed(slotOf(topicChannel(topic))));
      });
  }

  onRestored(handler: (topics: RestoredTopics) => void): void {
    this.restored.push(handler);
  }

  private tellRestored(topics: RestoredTopics): void {
    for (const handler of this.restored) handler(topics);
  }

  async publish(topic: string, message: object): Promise<void> {
    await this.spublish(topicChannel(topic), JSON.stringify(message));
  }

  listen(handler: (topic: string, message: unknown) => void): void {
    this.handler = handler;
  }

  watch(topic: string): Promise<void> {
    if (!this.watches.add(topic)) return this.subscribing.get(topic) ?? SETTLED;
    const subscribed = this.channels.subscribe(topicChannel(topic)).catch((err: unknown) => {
      // Sent again at the next reconnect, or in a second (debug: a drop fails a burst's worth).
      this.logger.debug({ err: (err as Error).message }, "could not subscribe to a topic yet");
    });
    // Later watches of the topic wait for the same subscribe while it is in flight.
    this.subscribing.set(topic, subscribed);
    void subscribed.then(() => {
      if (this.subscribing.get(topic) === subscribed) this.subscribing.delete(topic);
    });
    return subscribed;
  }

  unwatch(topic: string): void {
    if (this.watches.remove(topic)) this.channels.unsubscribe(topicChannel(topic));
  }
}

/** The in-process twin: there is only this instance, which hears the topics it watches. */
export class LocalTopicBus implements TopicBus {
  private readonly watches = new WatchCounts();
  private readonly bus = new EventEmitter();

  async publish(topic: string, message: object): Promise<void> {
    if (this.watches.has(topic)) this.bus.emit("message", topic, structuredClone(message));
  }

  listen(handler: (topic: string, message: unknown) => void): void {
    this.bus.on("message", handler);
  }

  watch(topic: string): Promise<void> {
    this.watches.add(topic);
    return SETTLED;
  }

  unwatch(topic: string): void {
    this.watches.remove(topic);
  }

  /** Nothing published here is ever missed. */
  onRestored(): void {}
}
