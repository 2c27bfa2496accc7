import type { Logger } from "pino";
import { RedisHistoryStore } from "./history-redis.js";
import { RedisPresenceStore } from "./presence.js";
import { RedisAuthStore } from "./redis-auth.js";
import { connectRedis, type RedisClient, type RedisTarget } from "./redis-connection.js";
import { RedisTopicBus } from "./topic-bus.js";
import type { ControlBus, HistoryLimits, RedisBackend } from "./types.js";

const CONTROL_CHANNEL = "tether:control";

/**
 * The control channel over Redis pub/sub. One message carries a whole
 * instruction, so it cannot be reordered against a second one (two messages on
 * two channels can be, on a Redis Cluster, whose nodes relay PUBLISH each their own way).
 */
class RedisControlBus implements ControlBus {
  constructor(
    /** PUBLISH that rejects on failure: the caller retries a control message until it is sent. */
    private readonly publishRaw: (channel: string, message: string) => Promise<number>,
    private readonly sub: RedisClient,
    private readonly logger: Logger,
  ) {}

  async publish(message: object): Promise<void> {
    await this.publishRaw(CONTROL_CHANNEL, JSON.stringify(message));
  }

  async subscribe(handler: (message: unknown) => void): Promise<void> {
    this.sub.on("message", (channel: string, text: string) => {
      if (channel !== CONTROL_CHANNEL) return;
      try {
        handler(JSON.parse(text));
      } catch (err) {
        this.logger.warn({ err }, "bad control message");
      }
    });
    await this.sub.subscribe(CONTROL_CHANNEL);
  }
}

/** The adapter publishes without catching: a failed publish during an outage would end the process. */
function publishWithoutThrowing(pub: RedisClient, logger: Logger): void {
  const publish = pub.publish.bind(pub);
  const spublish = pub.spublish.bind(pub);
  const swallow = (err: Error) => {
    logger.debug({ err: err.message }, "redis publish failed");
    return 0;
  };
  pub.publish = ((channel: string, message: string | Buffer) =>
    publish(channel, message).catch(swallow)) as typeof pub.publish;
  pub.spublish = ((channel: string, message: string | Buffer) =>
    spublish(channel, message).catch(swallow)) as typeof pub.spublish;
}

export async function createRedisBackend(
  target: RedisTarget,
  commandTimeoutMs: number,
  limits: HistoryLimits,
  logger: Logger,
): Promise<RedisBackend> {
  const [commands, pub, sub] = await Promise.all(
    ["commands", "pub", "sub"].map((name) => connectRedis(target, name, commandTimeoutMs, logger, name === "sub")),
  );
  if (!commands || !pub || !sub) throw new Error("unreachable: three clients requested");
  const control = new RedisControlBus(pub.publish.bind(pub), sub, logger);
  // Bound before the adapter's wrapper below: a failed SPUBLISH must reject, so the caller retries it.
  const spublish = pub.spublish.bind(pub);
  const topics = new RedisTopicBus((channel, message) => spublish(channel, message) as Promise<number>, sub, logger);
  publishWithoutThrowing(pub, logger);
  return {
    kind: "redis",
    commands,
    pub,
    sub,
    auth: new RedisAuthStore(commands),
    history: new RedisHistoryStore(commands, sub, limits),
    control,
    topics,
    presence: new RedisPresenceStore(commands),
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
