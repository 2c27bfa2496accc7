import type { TetherEvents } from "@tether/shared";
import type { TetherConfig } from "./config/config.js";
import { createLogger } from "./observability/logger.js";
import type { Publisher, PublishOptions, Target } from "./realtime/publisher.js";
import { StreamPublisher } from "./realtime/publisher.js";
import { historyLimits, publishPolicy } from "./realtime/settings.js";
import { RedisHistoryStore } from "./store/history-redis.js";
import { connectRedis } from "./store/redis-connection.js";

/** A publisher for processes that run no Socket.IO server (workers, cron jobs). */
export interface WorkerPublisher<E extends TetherEvents = TetherEvents> extends Publisher<E> {
  close(): Promise<void>;
}

/**
 * Publishes to Tether's users and rooms from another process: the same
 * history and fan-out as the server's own publisher, over one Redis connection.
 * Each `publish()` retries a failover or a lost connection under one id until
 * TETHER_PUBLISH_DEADLINE; give your own `id` to make your retries (a job run
 * again) publish once too.
 *
 * @example
 * const publisher = await createPublisher(loadConfig());
 * await publisher.publish({ user: "alice" }, "report:ready", { url: "/reports/42" }, { id: "report-42-ready" });
 * // typed: createPublisher<AppEvents>(config) checks the name and data against the app's event map
 * await publisher.close();
 */
export async function createPublisher<E extends TetherEvents = TetherEvents>(
  config: TetherConfig,
): Promise<WorkerPublisher<E>> {
  if (!config.redis) throw new Error("createPublisher needs REDIS_URL: an embedded Tether has no shared store");
  const logger = createLogger(config, { publisher: config.instanceId });
  const client = await connectRedis(config.redis, "publisher", config.redisCommandTimeoutMs, logger);
  const publisher = new StreamPublisher(
    new RedisHistoryStore(client, client, historyLimits(config)),
    publishPolicy(config),
  );
  // Retries still waiting when closed stop (UNAVAILABLE) rather than outlive the connection.
  const closing = new AbortController();
  const publish = (target: Target, event: string, data: object, options: PublishOptions = {}) =>
    publisher.publish(target, event, data, {
      ...options,
      ephemeral: options.ephemeral as false | undefined, // a worker sends none: refused INVALID_INPUT
      signal: options.signal ? AbortSignal.any([options.signal, closing.signal]) : closing.signal,
    });
  return {
    publish: publish as unknown as WorkerPublisher<E>["publish"], // its ephemeral overload always rejects (a worker sends none)
    close: async () => {
      closing.abort();
      await client.quit().catch(() => client.disconnect());
    },
  };
}
