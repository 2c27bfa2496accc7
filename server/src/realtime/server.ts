import type { Server as HttpServer } from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import { ClientEvent, ServerEvent, type SessionEndReason } from "@tether/shared";
import type { Logger } from "pino";
import { Server } from "socket.io";
import { sessionRoom } from "../auth/keys.js";
import type { OriginPolicy } from "../auth/origins.js";
import type { AuthService } from "../auth/service.js";
import type { RedisBackend } from "../store/redis.js";
import type { Backend } from "../store/types.js";
import { handshakeMiddleware } from "./handshake.js";
import { SessionLiveness } from "./liveness.js";
import type { TetherServer } from "./types.js";

export interface RealtimeOptions {
  instanceId: string;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  /** How often connected sessions are renewed and checked for their end. */
  sessionCheckIntervalMs: number;
  maxMessageBytes: number;
  origins: OriginPolicy;
  auth: AuthService;
  backend: Backend;
  logger: Logger;
  /** The user stream's current offset, sent in `welcome`. */
  currentOffset(userId: string): Promise<string>;
}

/** The realtime half of an instance. */
export interface Realtime {
  readonly io: TetherServer;
  readonly liveness: SessionLiveness;
  /** Ends a session on every instance: `session:ended`, then disconnect. */
  endSession(sid: string, reason: SessionEndReason): void;
}

/**
 * The Socket.IO server: liveness from its own ping/pong, fan-out through the
 * Redis adapter, and the handshake middleware as the only way in.
 */
export function createRealtime(httpServer: HttpServer, options: RealtimeOptions): Realtime {
  const { origins, logger } = options;
  const io: TetherServer = new Server(httpServer, {
    serveClient: false,
    pingInterval: options.pingIntervalMs,
    pingTimeout: options.pingTimeoutMs,
    maxHttpBufferSize: options.maxMessageBytes,
    perMessageDeflate: false,
    // `cors` does not apply to WebSocket upgrades: the origin is checked here, for every transport.
    allowRequest: (req, callback) => callback(origins.allows(req) ? null : "ORIGIN_FORBIDDEN", origins.allows(req)),
    cors: origins.allowlist ? { origin: origins.allowlist, credentials: true } : undefined,
    adapter: options.backend.kind === "redis" ? redisAdapter(options.backend as RedisBackend) : undefined,
  });

  io.use(handshakeMiddleware(options.auth, logger));
  const endSession = (sid: string, reason: SessionEndReason) => endSessionSockets(io, sid, reason);
  const liveness = new SessionLiveness(options.auth, options.sessionCheckIntervalMs, endSession, logger);
  liveness.start();

  io.on("connection", (socket) => {
    liveness.track(socket);
    void options.currentOffset(socket.data.userId).then(
      (offset) => socket.emit(ServerEvent.Welcome, { instance: options.instanceId, offset }),
      (err: unknown) => logger.warn({ err }, "could not read the user stream offset"),
    );
    socket.on(ClientEvent.Echo, (payload, ack) => {
      if (typeof ack === "function") ack(payload);
    });
  });
  return { io, liveness, endSession };
}

function redisAdapter(backend: RedisBackend) {
  return createAdapter(backend.pub, backend.sub, { key: "tether:io", requestsTimeout: 3_000 });
}

function endSessionSockets(io: TetherServer, sid: string, reason: SessionEndReason): void {
  const room = sessionRoom(sid);
  io.to(room).emit(ServerEvent.SessionEnded, { reason });
  io.in(room).disconnectSockets(true);
}
