import type { TetherEvents } from "@tether/shared";
import type { TetherConfig } from "./config/config.js";
import { createLogger } from "./ops/logger.js";
import type { Publisher } from "./realtime/publisher.js";
import { StreamPublisher } from "./realtime/publisher.js";
import { RedisHistoryStore } from "./store/history-redis.js";
import { connectRedis } from "./store/redis-connection.js";
import { historyLimits } from "./tether.js";

/** A publisher for processes that run no Socket.IO server (workers, cron jobs). */
export interface WorkerPublisher<E extends TetherEvents = TetherEvents> extends Publisher<E> {
  close(): Promise<void>;
}

/**
 * Publishes to Tether's users and rooms from another process: the same
 * history and fan-out as the server's own publisher, over one Redis connection.
 *
 * @example
 * const publisher = await createPublisher(loadConfig());
 * await publisher.publish({ user: "alice" }, "report:ready", { url: "/reports/42" });
 * // typed: createPublisher<AppEvents>(config) checks the name and data against the app's event map
 * await publisher.close();
 */
export async function createPublisher<E extends TetherEvents = TetherEvents>(
  config: TetherConfig,
): Promise<WorkerPublisher<E>> {
  if (!config.redis) throw new Error("createPublisher needs REDIS_URL: an embedded Tether has no shared store");
  const logger = createLogger(config.logLevel, { publisher: config.instanceId });
  const client = await connectRedis(config.redis, "publisher", config.redisCommandTimeoutMs, logger);
  const publisher = new StreamPublisher(new RedisHistoryStore(client, client, historyLimits(config)));
  return {
    publish: (target, event, data) => publisher.publish(target, event, data),
    close: async () => {
      await client.quit().catch(() => client.disconnect());
    },
  };
}
