import { randomUUID } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { isUnroutedSubscription, type RedisClient } from "./redis-connection.js";

/** Where probes travel: one channel per subscriber connection (per master on a Cluster). */
export const PROBE_CHANNEL_PREFIX = "tether:probe:";
/** A probe that is late while messages still arrive on the subscriber is waited for up to this many intervals. */
const MAX_LAG_INTERVALS = 3;

/** One subscriber connection the probe watches: standalone has one, a Cluster one per master. */
interface Shard {
  /** "" standalone; the master's node key (`host:port`) on a Cluster. */
  node: string;
  channel: string;
  /** The probe in flight: its nonce and when it was sent. */
  pending?: { nonce: string; sentAt: number };
}

export interface ProbeOptions {
  sub: RedisClient;
  /** SPUBLISH on the command connection (a Cluster routes it to the channel's master). */
  publish: (channel: string, message: string) => Promise<unknown>;
  intervalMs: number;
  /** A probe did not return: the connection was made to reconnect (its resubscribe resyncs). */
  onLost: (node: string, silentMs: number) => void;
}

/**
 * The delivery probe: every interval this instance SPUBLISHes a nonce on a
 * channel of its own per subscriber connection and expects it back through
 * that connection's subscription.
 *
 * Why a returned probe is enough (no per-stream head check): the append script
 * XADDs and SPUBLISHes in one atomic step, so every stored event is published.
 * Redis writes a client's pub/sub messages into one ordered output buffer on
 * one TCP connection; it never drops a single message from it and keeps the
 * connection: past the output-buffer limit it closes the client, and TCP
 * delivers in order or not at all. So a message can be lost only with its
 * connection (or its subscription) gone. A closed connection reconnects and
 * resyncs every stream; one gone without the instance noticing (half-open, or
 * dropped by Redis while this process was frozen) stops returning probes,
 * which this turns into a forced reconnect, hence the same resync. A probe
 * that returns proves the connection delivered everything published before it.
 *
 * A probe has half an interval to return. A late one while other messages
 * keep arriving is a lagging subscriber, not a dead one: it is given up to
 * MAX_LAG_INTERVALS before the reconnect (which would only add reads to a busy
 * instance).
 */
export class SubscriptionProbe {
  private readonly id = randomUUID();
  private readonly shards = new Map<string, Shard>();
  private timer: NodeJS.Timeout | undefined;
  private lastMessageAt = 0;
  private seq = 0;

  constructor(private readonly options: ProbeOptions) {}

  start(): void {
    this.timer ??= setInterval(() => this.round(), this.options.intervalMs).unref();
    this.round();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * A subscriber connection (re)connected and subscribed again, and its streams
   * are being re-read: probes sent before say nothing about it. (A second forced
   * reconnect now would also reject ioredis's own resubscribe commands, which
   * nothing awaits.)
   */
  reconnected(): void {
    for (const shard of this.shards.values()) shard.pending = undefined;
  }

  /** Any message on the subscriber: a probe's (true) is taken here; others show the connection is alive. */
  take(channel: string, message: string): boolean {
    this.lastMessageAt = Date.now();
    if (!channel.startsWith(PROBE_CHANNEL_PREFIX)) return false;
    for (const shard of this.shards.values()) {
      if (shard.channel === channel && shard.pending?.nonce === message) shard.pending = undefined;
    }
    return true;
  }

  /** The subscriber connections of now, each with its probe channel (a Cluster's masters may change). */
  private refreshShards(): void {
    const { sub } = this.options;
    if (!sub.isCluster) {
      if (!this.shards.has("")) this.addShard("", `${PROBE_CHANNEL_PREFIX}{${this.id}}`);
      return;
    }
    const slots = (sub as Cluster).slots;
    const masters = new Set<string>();
    for (const nodes of slots) if (nodes?.[0]) masters.add(nodes[0]);
    for (const [node, shard] of this.shards) {
      if (masters.has(node) && slots[slotOf(shard.channel)]?.[0] === node) continue;
      this.shards.delete(node);
      sub.sunsubscribe(shard.channel).catch(() => {});
    }
    for (const node of masters) {
      if (this.shards.has(node)) continue;
      // A hash tag that lands on one of this master's slots: its subscriber connection carries the probe.
      for (let i = 0; i < 100_000; i++) {
        const channel = `${PROBE_CHANNEL_PREFIX}{${this.id}:${i}}`;
        if (slots[slotOf(channel)]?.[0] !== node) continue;
        this.addShard(node, channel);
        break;
      }
    }
  }

  private addShard(node: string, channel: string): void {
    const shard: Shard = { node, channel };
    this.shards.set(node, shard);
    // Queued while the subscriber (re)connects; ioredis subscribes again after each reconnect.
    this.options.sub.ssubscribe(channel).catch((err: unknown) => {
      // Turned away unsent (the master has no subscriber yet): the next round adds it again.
      if (isUnroutedSubscription(err) && this.shards.get(node) === shard) this.shards.delete(node);
    });
  }

  private round(): void {
    this.refreshShards();
    for (const shard of this.shards.values()) {
      // Still out (a lagging connection was given more time): judged again, no second probe.
      if (shard.pending) {
        this.judge(shard);
        continue;
      }
      const pending = { nonce: String(++this.seq), sentAt: Date.now() };
      shard.pending = pending;
      this.options.publish(shard.channel, pending.nonce).catch(() => {
        // Unanswered publish: the probe will not return, and the verdict says so.
      });
      // Half an interval to return: a lost last event is found within one and a half intervals.
      setTimeout(() => this.judge(shard), this.options.intervalMs / 2).unref();
    }
  }

  /** A probe not back: the connection stopped delivering, unless it is only lagging (messages still arrive). */
  private judge(shard: Shard): void {
    const pending = shard.pending;
    if (!pending) return;
    // Read what is already in the socket first: a process just resumed from a freeze has the probe there.
    setImmediate(() => {
      if (shard.pending !== pending) return;
      const late = Date.now() - pending.sentAt;
      const lagging = this.lastMessageAt > pending.sentAt;
      if (lagging && late < MAX_LAG_INTERVALS * this.options.intervalMs) return;
      shard.pending = undefined;
      if (this.reconnect(shard.node)) this.options.onLost(shard.node, late);
    });
  }

  /**
   * Drops one subscriber connection so that it connects and subscribes again.
   * Its socket is destroyed, not ended: a half-open peer never answers a FIN.
   * A connection already reconnecting is left to it (its "ready" resyncs; an
   * outage is not counted as lost probes). True when one was dropped here.
   */
  private reconnect(node: string): boolean {
    const { sub } = this.options;
    if (!sub.isCluster) {
      if (sub.status !== "ready") return false;
      (sub as Redis).stream.destroy();
      return true;
    }
    // ioredis keeps a Cluster's sharded subscribers internal; the end of one makes the group replace
    // it and subscribe again ("subscribersReady").
    const cluster = sub as Cluster;
    const instance = shardConnection(cluster, node);
    if (instance?.status === "ready") {
      instance.stream.destroy();
      return true;
    }
    if (instance && instance.status !== "end" && instance.status !== "close") return false;
    // Ended (a sharded subscriber never reconnects by itself) or missing, and no slots refresh came
    // to replace it (one asked for during another is dropped): ask for one now.
    if (cluster.status !== "ready") return false;
    cluster.refreshSlotsCache();
    return true;
  }
}

/** The connection of a Cluster's sharded subscriber for one master (ioredis internals; undefined if absent). */
export function shardConnection(cluster: Cluster, node: string): Redis | undefined {
  const group = (cluster as unknown as { shardedSubscribers?: { shardedSubscribers?: Map<string, unknown> } })
    .shardedSubscribers;
  const subscriber = group?.shardedSubscribers?.get(node) as { getInstance?: () => Redis | null } | undefined;
  return subscriber?.getInstance?.() ?? undefined;
}

/** Every sharded subscriber connection of a Cluster (ioredis internals; empty if absent). */
export function shardConnections(cluster: Cluster): Redis[] {
  const group = (cluster as unknown as { shardedSubscribers?: { shardedSubscribers?: Map<string, unknown> } })
    .shardedSubscribers;
  return [...(group?.shardedSubscribers?.keys() ?? [])].flatMap((node) => shardConnection(cluster, node) ?? []);
}

/** A key's Redis Cluster slot (CRC16/XMODEM of its hash tag, mod 16384), as Redis computes it. */
export function slotOf(key: string): number {
  const open = key.indexOf("{");
  const close = open < 0 ? -1 : key.indexOf("}", open + 1);
  const tag = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(tag)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc & 16383;
}
