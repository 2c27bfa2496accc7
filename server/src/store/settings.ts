import { z } from "zod";
import { duration, type EnvOf, list } from "../env/values.js";
import type { RedisTarget } from "./redis-connection.js";

export const STORE_DEFAULTS = {
  /** Longest wait for one Redis command before the request fails with UNAVAILABLE. */
  redisCommandTimeoutMs: 2_000,
} as const;

/** The store's variables and their validation. */
export const storeEnv = {
  /** One URL; with TETHER_REDIS_CLUSTER=on, a comma list of cluster seed nodes. */
  REDIS_URL: list.pipe(z.array(z.string().regex(/^rediss?:\/\/[^,\s]+$/, "expected a redis:// or rediss:// URL"))),
  TETHER_REDIS_CLUSTER: z.enum(["on", "off"]).default("off"),
  TETHER_REDIS_COMMAND_TIMEOUT: duration(STORE_DEFAULTS.redisCommandTimeoutMs),
};

/** The store's part of the configuration. */
export interface StoreConfig {
  /** Unset: embedded mode, in-process stores, one instance only. */
  redis: RedisTarget | undefined;
  /** The (first) Redis URL, for display. */
  redisUrl: string | undefined;
  redisCommandTimeoutMs: number;
}

export function storeConfig(e: EnvOf<typeof storeEnv>): StoreConfig {
  return {
    redis:
      e.REDIS_URL.length === 0
        ? undefined
        : e.TETHER_REDIS_CLUSTER === "on"
          ? { mode: "cluster", urls: e.REDIS_URL }
          : { mode: "standalone", url: e.REDIS_URL[0] ?? "" },
    redisUrl: e.REDIS_URL[0],
    redisCommandTimeoutMs: e.TETHER_REDIS_COMMAND_TIMEOUT,
  };
}
