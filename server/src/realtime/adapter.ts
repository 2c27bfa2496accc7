import { createShardedAdapter } from "@socket.io/redis-adapter";
import type { RedisBackend } from "../store/types.js";

/**
 * The sharded Redis adapter, in dynamic mode: a room without history that apps
 * join gets a channel of its own, heard only by instances with a member, and
 * socket queries (`fetchSockets`) and server-side emits reach every instance.
 * Tether's own streams do not go through it (they have their own channels, with
 * history), and sockets join no room by default: a connect costs the adapter nothing.
 */
export function redisAdapter(backend: RedisBackend): ReturnType<typeof createShardedAdapter> {
  // Its (un)subscribe failures, which it does not catch, are handled on the connection (connectRedis).
  return createShardedAdapter(backend.pub, backend.sub, {
    channelPrefix: "tether:io",
    subscriptionMode: "dynamic",
  });
}
