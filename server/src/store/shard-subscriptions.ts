import type { RedisClient } from "./redis-connection.js";

/** How soon an unconfirmed (un)subscribe is sent again when no reconnect comes to do it. */
const RESEND_AFTER_MS = 1_000;
/**
 * How long a Cluster's SSUBSCRIBE may stay unanswered before it counts as failed: ioredis
 * never settles one that a node answered with MOVED (its slot map was stale; it only refreshes
 * the map and subscribes the group's channels again), and a shard subscriber has no command timeout.
 */
const SHARD_SUBSCRIBE_DEADLINE_MS = 5_000;

/** A sharded SSUBSCRIBE on a Cluster, failed when not answered within the deadline. */
function shardSubscribe(cluster: RedisClient, channel: string): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`SSUBSCRIBE ${channel} unanswered for ${SHARD_SUBSCRIBE_DEADLINE_MS} ms`)),
      SHARD_SUBSCRIBE_DEADLINE_MS,
    );
  });
  return Promise.race([cluster.ssubscribe(channel), deadline]).finally(() => clearTimeout(timer));
}

/** A batched subscribe's waiter: settled true once Redis confirmed it. */
interface Waiter {
  done: Promise<boolean>;
  settle: (ok: boolean) => void;
}

/**
 * The sharded channels one part of an instance means to hear on a subscriber
 * connection, kept so through drops and Cluster failovers.
 *
 * - On one Redis the subscribes of one turn of the event loop (the connects of
 *   a burst) share one SSUBSCRIBE; on a Cluster each channel may live on
 *   another shard and goes alone.
 * - ioredis subscribes again after a reconnect only to what Redis had
 *   confirmed, and a Cluster turns a command away unsent and unrecorded while a
 *   slot has no sharded subscriber. A command that failed unconfirmed is sent
 *   again at the next reconnect (the owner calls `resend()` on "ready" and
 *   "subscribersReady"), or after a second if none comes.
 * - What a channel is set to then is what is wanted at re-send time, not what
 *   failed: an unsubscribe and a subscribe of one channel both failing in one
 *   drop (a client back on the instance it left) fail in that order, and the
 *   subscribe must win.
 */
export class ShardSubscriptions {
  /** Channels to subscribe at the end of this turn of the event loop, with their waiters. */
  private pending: Map<string, Waiter> | undefined;
  /** The channels this owner means to hear: what a re-send restores. */
  private readonly wanted = new Set<string>();
  /** Channels whose last (un)subscribe failed unconfirmed. */
  private readonly unconfirmed = new Set<string>();
  private resendTimer: NodeJS.Timeout | undefined;

  /**
   * @param onResubscribed called with the channels a re-send between reconnects confirmed:
   *   what was published on them meanwhile was not heard.
   */
  constructor(
    private readonly sub: RedisClient,
    private readonly onResubscribed?: (channels: string[]) => void,
  ) {}

  /**
   * Subscribes to a channel; resolves once Redis confirmed it, rejects when this
   * attempt failed (the channel stays wanted and is sent again).
   */
  async subscribe(channel: string): Promise<void> {
    this.wanted.add(channel);
    this.unconfirmed.delete(channel);
    if (this.sub.isCluster) {
      try {
        await shardSubscribe(this.sub, channel);
      } catch (err) {
        this.failed(channel);
        throw err;
      }
      return;
    }
    if (this.pending === undefined) {
      this.pending = new Map();
      setImmediate(() => this.subscribePending());
    }
    let waiting = this.pending.get(channel);
    if (waiting === undefined) {
      let settle!: (ok: boolean) => void;
      waiting = { done: new Promise<boolean>((resolve) => (settle = resolve)), settle };
      this.pending.set(channel, waiting);
    }
    if (!(await waiting.done)) throw new Error(`could not subscribe to ${channel}`);
  }

  /** Stops hearing a channel; a failure is set right like a subscribe's. */
  unsubscribe(channel: string): void {
    this.wanted.delete(channel);
    const waiting = this.pending?.get(channel);
    if (waiting) {
      // Not sent yet: it never will be (its subscriber is gone; a subscribe again makes a new one).
      this.pending?.delete(channel);
      waiting.settle(false);
      return;
    }
    this.unconfirmed.delete(channel);
    this.sub.sunsubscribe(channel).catch(() => {
      // Unconfirmed: ioredis may still hold the channel and subscribe it again after a reconnect.
      this.failed(channel);
    });
  }

  /**
   * Sets each unconfirmed channel to what is wanted now (subscribed or not), on
   * the connection in the order of this call; resolves to how many subscriptions
   * were confirmed.
   */
  async resend(): Promise<number> {
    return (await this.resendChannels()).length;
  }

  /** `resend`, resolving to the channels whose subscriptions were confirmed. */
  private async resendChannels(): Promise<string[]> {
    const channels = [...this.unconfirmed];
    this.unconfirmed.clear();
    const results = await Promise.all(
      channels.map((channel) => {
        const subscribe = this.wanted.has(channel);
        const sent = !subscribe
          ? this.sub.sunsubscribe(channel)
          : this.sub.isCluster
            ? shardSubscribe(this.sub, channel)
            : this.sub.ssubscribe(channel);
        return sent.then(
          () => subscribe,
          () => {
            this.failed(channel);
            return false;
          },
        );
      }),
    );
    return channels.filter((_, index) => results[index]);
  }

  /** Stops the timed re-send. */
  close(): void {
    clearTimeout(this.resendTimer);
    this.resendTimer = undefined;
  }

  private subscribePending(): void {
    const batch = this.pending;
    this.pending = undefined;
    if (batch === undefined || batch.size === 0) return;
    this.sub.ssubscribe(...batch.keys()).then(
      () => {
        for (const waiting of batch.values()) waiting.settle(true);
      },
      () => {
        for (const [channel, waiting] of batch) {
          this.failed(channel);
          waiting.settle(false);
        }
      },
    );
  }

  /** An (un)subscribe failed unconfirmed: set right at the next reconnect, or shortly if none comes. */
  private failed(channel: string): void {
    this.unconfirmed.add(channel);
    this.resendTimer ??= setTimeout(() => {
      this.resendTimer = undefined;
      if (this.sub.status !== "ready") return; // its "ready" re-sends
      void this.resendChannels().then((subscribed) => {
        if (subscribed.length > 0) this.onResubscribed?.(subscribed);
      });
    }, RESEND_AFTER_MS).unref();
  }
}
