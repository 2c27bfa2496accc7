import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import { RedisHistoryStore } from "./history-redis.js";
import { CONSUME_TOKEN, MINT_TOKEN, RENEW_SESSIONS } from "./scripts.js";
import type { AuthStore, Backend, ConsumedToken, HistoryLimits } from "./types.js";

/** Reconnect forever, backing off to at most this long between attempts. */
const MAX_RECONNECT_DELAY_MS = 2_000;

interface ScriptedRedis extends Redis {
  tetherMintToken(
    sessionKey: string,
    tokenKey: string,
    sid: string,
    tokenTtlMs: number,
    idleTtlMs: number,
  ): Promise<number>;
  tetherRenewSessions(keyCount: number, ...keysThenIdleTtl: (string | number)[]): Promise<number[]>;
  tetherConsumeToken(tokenKey: string, sessionKeyPrefix: string): Promise<[string, string?] | null>;
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
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(commandTimeoutMs, 1_000),
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, MAX_RECONNECT_DELAY_MS),
  };
}

/**
 * Connects a client, retrying until Redis answers (an instance started before
 * its Redis waits for it). Errors are logged once per outage, not per retry.
 */
export async function connectRedis(
  url: string,
  name: string,
  commandTimeoutMs: number,
  logger: Logger,
): Promise<Redis> {
  const client = new Redis(url, { ...redisOptions(commandTimeoutMs), connectionName: `tether:${name}` });
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

/** The Redis auth store: Lua scripts, one round trip per operation. */
export class RedisAuthStore implements AuthStore {
  private readonly client: ScriptedRedis;

  constructor(client: Redis) {
    client.defineCommand("tetherMintToken", { numberOfKeys: 2, lua: MINT_TOKEN });
    client.defineCommand("tetherConsumeToken", { numberOfKeys: 1, lua: CONSUME_TOKEN });
    client.defineCommand("tetherRenewSessions", { lua: RENEW_SESSIONS });
    this.client = client as ScriptedRedis;
  }

  async getOrCreate(key: string, candidate: string): Promise<string> {
    const previous = await this.client.set(key, candidate, "NX", "GET");
    return previous ?? candidate;
  }

  async mintToken(
    sessionKey: string,
    tokenKey: string,
    sid: string,
    tokenTtlMs: number,
    idleTtlMs: number,
  ): Promise<boolean> {
    return (await this.client.tetherMintToken(sessionKey, tokenKey, sid, tokenTtlMs, idleTtlMs)) === 1;
  }

  async renewSessions(sessionKeys: string[], idleTtlMs: number): Promise<number[]> {
    if (sessionKeys.length === 0) return [];
    const gone = await this.client.tetherRenewSessions(sessionKeys.length, ...sessionKeys, idleTtlMs);
    return gone.map((index) => index - 1);
  }

  async consumeToken(tokenKey: string, sessionKeyPrefix: string): Promise<ConsumedToken> {
    const reply = await this.client.tetherConsumeToken(tokenKey, sessionKeyPrefix);
    if (reply === null) return { status: "unknown" };
    const [sid, session] = reply;
    return session === undefined ? { status: "session-gone", sid } : { status: "ok", sid, session };
  }
}

/** Connections for one instance: commands, and a pub/sub pair for the Socket.IO adapter. */
export interface RedisBackend extends Backend {
  readonly kind: "redis";
  readonly commands: Redis;
  readonly pub: Redis;
  readonly sub: Redis;
}

export async function createRedisBackend(
  url: string,
  commandTimeoutMs: number,
  limits: HistoryLimits,
  logger: Logger,
): Promise<RedisBackend> {
  const [commands, pub, sub] = await Promise.all(
    ["commands", "pub", "sub"].map((name) => connectRedis(url, name, commandTimeoutMs, logger)),
  );
  if (!commands || !pub || !sub) throw new Error("unreachable: three clients requested");
  // The adapter publishes without catching: a failed publish during an outage
  // would be an unhandled rejection and end the process. Log it instead.
  const publish = pub.publish.bind(pub);
  pub.publish = ((channel: string, message: string | Buffer) =>
    publish(channel, message).catch((err: Error) => {
      logger.debug({ err: err.message }, "redis publish failed");
      return 0;
    })) as typeof pub.publish;
  return {
    kind: "redis",
    commands,
    pub,
    sub,
    auth: new RedisAuthStore(commands),
    history: new RedisHistoryStore(commands, sub, limits),
    sessionClient: commands,
    ping: async () => {
      await Promise.all([commands.ping(), pub.ping()]);
      if (sub.status !== "ready") throw new Error("redis subscriber not ready");
    },
    close: async () => {
      await Promise.allSettled([commands, pub, sub].map((client) => client.quit()));
      for (const client of [commands, pub, sub]) client.disconnect();
    },
  };
}
