import type { Logger } from "pino";
import { createMemoryBackend } from "./memory.js";
import { createRedisBackend } from "./redis.js";
import type { StoreConfig } from "./settings.js";
import type { Backend, HistoryLimits } from "./types.js";

/** Where the store lives, how long one command may take, and how much history it keeps. */
export interface BackendSettings extends Pick<StoreConfig, "redis" | "redisCommandTimeoutMs"> {
  history: HistoryLimits;
}

/** Connects the store: Redis when configured, otherwise the in-process twins (embedded mode, one instance). */
export async function createBackend(deps: { logger: Logger }, settings: BackendSettings): Promise<Backend> {
  return settings.redis
    ? await createRedisBackend(settings.redis, settings.redisCommandTimeoutMs, settings.history, deps.logger)
    : createMemoryBackend(settings.history);
}
