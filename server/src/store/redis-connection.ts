import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import { coalesceWrites } from "./write-coalescing.js";

/** One Redis, or a Redis Cluster reached through seed nodes. */
export type RedisTarget = { mode: "standalone"; url: string } | { mode: "cluster"; urls: string[] };

/** A connection of either kind: every command Tether uses exists on both. */
export type RedisClient = Redis | Cluster;

/** Reconnect forever, backing off to at most this long between attempts. */
const MAX_RECONNECT_DELAY_MS = 2_000;
const retryDelay = (attempt: number) => Math.min(50 * 2 ** attempt, MAX_RECONNECT_DELAY_MS);
/** How often a Cluster's subscriber client re-reads the slot map (one CLUSTER SLOTS). */
const SUBSCRIBER_SLOTS_REFRESH_MS = 5_000;

/**
 * ioredis turned a Cluster (un)subscribe away before sending or recording it: no
 * sharded subscriber holds the channel's slot yet (mid-failover, or while the
 * client reconnects). Unlike a command lost with its connection, ioredis will not
 * send it again by itself.
 */
export function isUnroutedSubscription(err: unknown): boolean {
  return err instanceof Error && /^No (sharded )?subscriber for/.test(err.message);
}

/**
 * Options for every connection: bounded waits and no crash on an outage.
 * With the offline queue off, a command issued while Redis is unreachable fails
 * at once instead of waiting (and piling up) until Redis returns.
 */
export function redisOptions(commandTimeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    // Never send a command twice: an append retried after a reconnect (or after its
    // timeout, from the queue of unanswered commands) would publish one event twice.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(commandTimeoutMs, 1_000),
    retryStrategy: retryDelay,
  };
}

function withoutOfflineQueue(options: RedisOptions): Omit<RedisOptions, "enableOfflineQueue"> {
  const { enableOfflineQueue: _ignored, ...rest } = options;
  return rest;
}

/** Host, port and credentials of a node URL, for ioredis Cluster's seed list. */
function clusterNode(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 6379) };
}

/**
 * @param subscriber a pub/sub connection: it only subscribes, so its commands may
 * queue while it (re)connects. The Socket.IO adapter subscribes without awaiting,
 * and a Cluster's subscriber connection comes up after the cluster is "ready".
 */
function createClient(target: RedisTarget, name: string, commandTimeoutMs: number, subscriber: boolean): RedisClient {
  const options = {
    ...redisOptions(commandTimeoutMs),
    connectionName: `tether:${name}`,
    enableOfflineQueue: subscriber,
    // A reconnect storm sends many small commands at once: one write per event-loop turn, not per
    // command, by `coalesceWrites` (ioredis's auto-pipelining costs more CPU than it saves).
    enableAutoPipelining: false,
  };
  if (target.mode === "standalone") return withCoalescedWrites(new Redis(target.url, options), subscriber);
  const first = new URL(target.urls[0] ?? "redis://127.0.0.1:6379");
  const cluster = new Cluster(target.urls.map(clusterNode), {
    lazyConnect: true,
    // Stream events and the adapter use sharded pub/sub: one subscriber connection per shard.
    shardedSubscribers: subscriber,
    enableOfflineQueue: subscriber,
    // The subscriber's (un)subscribes are never re-sent by the Cluster client after their connection
    // closed: such a retry goes out some 100 ms later, after newer ones (a SUNSUBSCRIBE of a socket
    // that left, re-sent after the SSUBSCRIBE of the socket that came back, leaves the stream unheard
    // with the connection alive). They fail instead, and the history store sets each channel to what
    // is wanted now, in order; ioredis subscribes a replaced shard subscriber to its channels itself.
    retryDelayOnFailover: subscriber ? 0 : undefined,
    retryDelayOnClusterDown: subscriber ? 0 : undefined,
    // Not on a Cluster: an auto-pipelined batch that meets a topology change surfaces raw MOVED
    // errors instead of following them (redis/ioredis#2075), failing reads and publishes mid-failover.
    enableAutoPipelining: false,
    clusterRetryStrategy: retryDelay,
    // ioredis replaces a lost sharded subscriber only when a slots refresh runs, and a refresh asked
    // for while another is in flight is dropped: refresh on a timer too, so none stays lost.
    slotsRefreshInterval: subscriber ? SUBSCRIBER_SLOTS_REFRESH_MS : undefined,
    redisOptions: {
      // Node connections open lazily, on a node's first command: ioredis lets that command wait
      // for it (bounded by the command timeout) unless told otherwise, so no enableOfflineQueue
      // here. Cluster-wide outages still fail fast (the cluster-level option above).
      ...withoutOfflineQueue(options),
      username: first.username || undefined,
      password: first.password || undefined,
      tls: first.protocol === "rediss:" ? {} : undefined,
    },
  });
  return withCoalescedWrites(cluster, subscriber);
}

/** A command connection's writes, one per event-loop turn (a subscriber's are few: left as they are). */
function withCoalescedWrites<T extends RedisClient>(client: T, subscriber: boolean): T {
  if (!subscriber) coalesceWrites(client);
  return client;
}

/**
 * Connects a client, retrying until Redis answers (an instance started before
 * its Redis waits for it). Errors are logged once per outage, not per retry.
 */
export async function connectRedis(
  target: RedisTarget,
  name: string,
  commandTimeoutMs: number,
  logger: Logger,
  subscriber = false,
): Promise<RedisClient> {
  const client = createClient(target, name, commandTimeoutMs, subscriber);
  if (subscriber) handleSubscriptionFailures(client, name, logger);
  let down = false;
  client.on("error", (err: Error) => {
    if (down) return;
    down = true;
    logger.warn({ client: name, err: err.message }, "redis connection lost; reconnecting");
  });
  client.on("ready", () => {
    if (down) logger.info({ client: name }, "redis connection restored");
    down = false;
  });
  const ready = new Promise<void>((resolve) => client.once("ready", () => resolve()));
  client.connect().catch(() => {
    // The retry strategy keeps trying; "ready" resolves when it succeeds.
  });
  await ready;
  return client;
}

/** The (un)subscribe commands of a subscriber connection. */
const SUBSCRIPTION_COMMANDS = ["subscribe", "ssubscribe", "psubscribe", "unsubscribe", "sunsubscribe", "punsubscribe"];

/**
 * Every (un)subscribe on this connection gets its failure handled (logged),
 * whoever called it: ioredis subscribes again after a reconnect, and the
 * Socket.IO adapter (un)subscribes, both without catching. When Redis drops the
 * connection meanwhile (a frozen instance past the pub/sub output-buffer limit)
 * or does not answer within the command timeout, that rejection was unhandled
 * and ended the process. Callers that await still see it; nothing is lost, as
 * ioredis subscribes again to every channel it holds once it has reconnected.
 */
function handleSubscriptionFailures(client: RedisClient, name: string, logger: Logger): void {
  const commands = client as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const command of SUBSCRIPTION_COMMANDS) {
    const original = commands[command];
    if (typeof original !== "function") continue;
    commands[command] = function (this: unknown, ...args: unknown[]) {
      const result = original.apply(this, args);
      if (result instanceof Promise)
        result.catch((err: unknown) =>
          logger.warn({ client: name, command, err: (err as Error)?.message }, "redis subscription command failed"),
        );
      return result;
    };
  }
}
