import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";

/** One Redis, or a Redis Cluster reached through seed nodes. */
export type RedisTarget = { mode: "standalone"; url: string } | { mode: "cluster"; urls: string[] };

/** A connection of either kind: every command Tether uses exists on both. */
export type RedisClient = Redis | Cluster;

/** Reconnect forever, backing off to at most this long between attempts. */
const MAX_RECONNECT_DELAY_MS = 2_000;
const retryDelay = (attempt: number) => Math.min(50 * 2 ** attempt, MAX_RECONNECT_DELAY_MS);

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
    // A reconnect storm sends many small commands at once: one write per event-loop tick, not per command.
    enableAutoPipelining: !subscriber,
  };
  if (target.mode === "standalone") return new Redis(target.url, options);
  const first = new URL(target.urls[0] ?? "redis://127.0.0.1:6379");
  return new Cluster(target.urls.map(clusterNode), {
    lazyConnect: true,
    enableOfflineQueue: subscriber,
    enableAutoPipelining: !subscriber,
    clusterRetryStrategy: retryDelay,
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
