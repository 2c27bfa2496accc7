import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { RedisClient } from "./redis-connection.js";
import type { TopicBus } from "./types.js";

/** The sharded channel of a topic (a session's room tag): `tether:end:<topic>`. */
export const TOPIC_CHANNEL_PREFIX = "tether:end:";
export const topicChannel = (topic: string) => `${TOPIC_CHANNEL_PREFIX}${topic}`;

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
 * it, not to every instance. The watches of one turn of the event loop (a burst
 * of connects) share one SSUBSCRIBE on one Redis (one per channel on a Cluster,
 * whose channels live on different shards); ioredis subscribes again after a
 * reconnect. A subscribe that fails is logged, not retried: what a topic's
 * message says must also be found another way (a session's end: the session
 * check notices the session gone within its interval).
 */
export class RedisTopicBus implements TopicBus {
  private readonly watches = new WatchCounts();
  private pending: Set<string> | undefined;
  private handler: ((topic: string, message: unknown) => void) | undefined;

  constructor(
    /** SPUBLISH that rejects on failure: the caller retries until it is sent. */
    private readonly spublish: (channel: string, message: string) => Promise<number>,
    private readonly sub: RedisClient,
    private readonly logger: Logger,
  ) {
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
  }

  async publish(topic: string, message: object): Promise<void> {
    await this.spublish(topicChannel(topic), JSON.stringify(message));
  }

  listen(handler: (topic: string, message: unknown) => void): void {
    this.handler = handler;
  }

  watch(topic: string): void {
    if (!this.watches.add(topic)) return;
    if (this.sub.isCluster) {
      this.subscribe([topicChannel(topic)]);
      return;
    }
    if (this.pending === undefined) {
      this.pending = new Set();
      setImmediate(() => {
        const batch = this.pending;
        this.pending = undefined;
        if (batch && batch.size > 0) this.subscribe([...batch]);
      });
    }
    this.pending.add(topicChannel(topic));
  }

  unwatch(topic: string): void {
    if (!this.watches.remove(topic)) return;
    const channel = topicChannel(topic);
    // Not sent yet: it never will be.
    if (this.pending?.delete(channel)) return;
    this.sub.sunsubscribe(channel).catch(() => {
      // Left subscribed: its messages are dropped here (no watch), and it goes with the connection.
    });
  }

  private subscribe(channels: string[]): void {
    this.sub.ssubscribe(...channels).catch((err: unknown) => {
      this.logger.warn({ err: (err as Error).message, channels: channels.length }, "could not subscribe to topics");
    });
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

  watch(topic: string): void {
    this.watches.add(topic);
  }

  unwatch(topic: string): void {
    this.watches.remove(topic);
  }
}
