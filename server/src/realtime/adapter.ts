import { createShardedAdapter } from "@socket.io/redis-adapter";
import type { Logger } from "pino";
import type { RedisBackend } from "../store/redis.js";
import type { RedisClient } from "../store/redis-connection.js";

/**
 * The sharded Redis adapter, in dynamic mode: a room without history that apps
 * join gets a channel of its own, heard only by instances with a member, and
 * socket queries (`fetchSockets`) and server-side emits reach every instance.
 * Tether's own streams do not go through it (they have their own channels, with
 * history), and sockets join no room by default: a connect costs the adapter nothing.
 */
export function redisAdapter(backend: RedisBackend, logger: Logger): ReturnType<typeof createShardedAdapter> {
  return createShardedAdapter(backend.pub, caughtSubscriptions(backend.sub, logger), {
    channelPrefix: "tether:io",
    subscriptionMode: "dynamic",
  });
}

/** The adapter's (un)subscribe calls, which it neither awaits nor catches. */
const SUBSCRIPTION_COMMANDS = new Set<string | symbol>(["ssubscribe", "sunsubscribe"]);

/**
 * The subscriber connection as the adapter sees it, with its (un)subscribe
 * calls' failures caught and logged. The adapter fires them and forgets: when
 * Redis drops the connection (a frozen instance past the pub/sub output
 * buffer limit) or does not answer within the command timeout, the rejection
 * was unhandled and ended the process. Nothing is lost by catching it: ioredis
 * subscribes again to every channel it holds once it has reconnected.
 */
function caughtSubscriptions(sub: RedisClient, logger: Logger): RedisClient {
  return new Proxy(sub, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      if (!SUBSCRIPTION_COMMANDS.has(property)) return value.bind(target);
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (result instanceof Promise)
          result.catch((err: unknown) =>
            logger.warn({ err: (err as Error)?.message, command: String(property) }, "adapter subscription failed"),
          );
        return result;
      };
    },
  });
}
