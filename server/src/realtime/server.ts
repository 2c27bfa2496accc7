import { randomUUID } from "node:crypto";
import type { Server as HttpServer } from "node:http";
import { ClientEvent, ServerEvent, type SessionEndReason } from "@tether/shared";
import type { Logger } from "pino";
import { Server } from "socket.io";
import { sessionRoom } from "../auth/keys.js";
import type { OriginPolicy } from "../auth/origins.js";
import type { AuthService } from "../auth/service.js";
import type { AuthConfig } from "../auth/settings.js";
import type { Metrics } from "../observability/metrics.js";
import type { Backend, HistoryStore } from "../store/types.js";
import { redisAdapter } from "./adapter.js";
import { Admission } from "./admission.js";
import { type EphemeralSink, ephemeralSink } from "./broadcast.js";
import { SocketCapacity } from "./capacity.js";
import { ConnectAttempts } from "./connect-attempts.js";
import { Delivery } from "./delivery.js";
import { EventGuard, SocketCounter } from "./guards.js";
import type { EventHandlers } from "./handlers.js";
import { handshakeMiddleware, type RoomsOf } from "./handshake.js";
import { historyEvents } from "./history-events.js";
import { type ConnectionHooks, runConnectionHooks } from "./hooks.js";
import { SessionLiveness } from "./liveness.js";
import { LocalSessions } from "./local-sessions.js";
import { parseRoomControl, type RoomControl, type RoomControlMessage } from "./room-control.js";
import { roomEvents } from "./room-events.js";
import { type CanJoin, Rooms } from "./rooms.js";
import { SessionEnds } from "./session-end.js";
import { REALTIME_DEFAULTS, type RealtimeConfig } from "./settings.js";
import { makeSocketsGuarded } from "./socket-class.js";
import { SocketLifetime } from "./socket-lifetime.js";
import { SocketTickets } from "./socket-tickets.js";
import type { BuiltinListeners, TetherServer } from "./types.js";
import { coalesceUpgradeWrites } from "./upgrade-writes.js";

/** The message that ends a session's sockets, on the session's topic (its room tag, not the session id). */
interface SessionEndedMessage {
  reason: SessionEndReason;
}

/** Realtime's settings: its part of the config, and where Socket.IO listens. */
export type RealtimeSettings = Pick<
  RealtimeConfig,
  | "pingIntervalMs"
  | "pingTimeoutMs"
  | "connectTimeoutMs"
  | "sessionCheckIntervalMs"
  | "sessionSweepIntervalMs"
  | "streamCheckIntervalMs"
  | "subscriptionLingerMs"
  | "admission"
  | "socketLimits"
  | "roomLimits"
  | "history"
  | "maxPresenceBytes"
  | "maxSockets"
> &
  Pick<AuthConfig, "resumeTicketTtlMs" | "sessionIdleTtlMs"> & {
    instanceId: string;
    /** The Socket.IO path, e.g. `/socket.io/`. */
    socketPath: string;
  };

/** The services realtime works with. */
export interface RealtimeDeps {
  origins: OriginPolicy;
  auth: AuthService;
  backend: Backend;
  /** The backend's history, instrumented. */
  history: HistoryStore;
  metrics: Metrics;
  /** The rooms with history a user's sockets join at connect. Default: none. */
  roomsOf?: RoomsOf | undefined;
  /** The app's client → server events (`tether.handle`). */
  handlers: EventHandlers;
  /** Whether a user may join a room at run time. Default: no runtime joins. */
  canJoin?: CanJoin | undefined;
  /** True once the instance is shutting down: handshakes are refused. */
  isDraining: () => boolean;
  /** The host's `onConnect` / `onDisconnect`. */
  hooks?: ConnectionHooks;
  logger: Logger;
}

/** The realtime half of an instance. */
export interface Realtime {
  readonly io: TetherServer;
  readonly liveness: SessionLiveness;
  readonly delivery: Delivery;
  readonly admission: Admission;
  /** The socket cap: full means new handshakes are refused and the agent check answers 0%. */
  readonly capacity: SocketCapacity;
  readonly rooms: Rooms;
  /** Sends ephemeral events (to a user, a room, or everyone) on every instance. */
  readonly ephemeral: EphemeralSink;
  /**
   * Ends a session on every instance: `session:ended`, then disconnect. This
   * instance's sockets at once; the others' through Redis, retried until sent.
   */
  endSession(sid: string, reason: SessionEndReason): Promise<void>;
  /**
   * A host's room instruction on every instance: this one's sockets at once,
   * the others' through the control channel. Rejects when it could not be sent
   * to the others (Redis unreachable): call again.
   */
  roomControl(control: RoomControl): Promise<void>;
  /** Stops the session checks and the pending session-end retries. */
  stop(): void;
}

/** The realtime half, or an error that says `attach` has not been called yet. */
export function requireAttached(realtime: Realtime | undefined): Realtime {
  if (!realtime) throw new Error("Tether is not attached to an HTTP server yet: call tether.attach(server)");
  return realtime;
}

/**
 * The Socket.IO server: liveness from its own ping/pong, fan-out through the
 * Redis adapter, and the handshake middleware as the only way in.
 */
export function createRealtime(httpServer: HttpServer, deps: RealtimeDeps, settings: RealtimeSettings): Realtime {
  const { origins, logger, backend } = deps;
  const roomsOf = deps.roomsOf ?? (() => []);
  const io: TetherServer = new Server(httpServer, {
    serveClient: false,
    path: settings.socketPath,
    pingInterval: settings.pingIntervalMs,
    pingTimeout: settings.pingTimeoutMs,
    connectTimeout: settings.connectTimeoutMs,
    maxHttpBufferSize: REALTIME_DEFAULTS.maxSocketMessageBytes,
    perMessageDeflate: false,
    // `cors` does not apply to WebSocket upgrades: the origin is checked here, for every transport.
    allowRequest: (req, callback) => {
      const allowed = origins.allows(req);
      if (allowed) coalesceUpgradeWrites(req);
      callback(allowed ? null : "ORIGIN_FORBIDDEN", allowed);
    },
    cors: origins.allowlist ? { origin: origins.allowlist, credentials: true } : undefined,
    adapter: backend.kind === "redis" ? redisAdapter(backend) : undefined,
  });

  // What each socket holds here (a slot, its cursors, its counts) is given back through one lifetime.
  const lifetime = new SocketLifetime();
  const delivery = new Delivery(
    io,
    deps.history,
    {
      checkIntervalMs: settings.streamCheckIntervalMs,
      lingerMs: settings.subscriptionLingerMs,
      replayBufferBytes: settings.socketLimits.replayBufferBytes,
      metrics: deps.metrics,
      logger,
    },
    lifetime,
  );
  delivery.start().catch((err: unknown) => logger.error({ err }, "could not subscribe to published events"));
  // One message per ended session on the session's own sharded channel, heard by the instances
  // holding its sockets: each tells its own sockets, then disconnects them. (An adapter broadcast
  // plus a separate disconnectSockets request can arrive in the wrong order.)
  const sessions = new LocalSessions(lifetime, backend.topics, settings.subscriptionLingerMs);
  const endLocal = (room: string, reason: SessionEndReason) => {
    for (const socket of sessions.of(room)) {
      socket.emit(ServerEvent.SessionEnded, { reason });
      socket.disconnect(true);
    }
  };
  backend.topics.listen((room, message) => {
    const { reason } = message as Partial<SessionEndedMessage>;
    if (typeof reason === "string") endLocal(room, reason as SessionEndReason);
  });
  // Instances of earlier releases broadcast session ends on the control channel (a rolling upgrade).
  backend.control
    .subscribe((message) => {
      const { room, reason } = message as { room?: unknown; reason?: unknown };
      if (typeof room === "string" && typeof reason === "string") endLocal(room, reason as SessionEndReason);
    })
    .catch((err: unknown) => logger.error({ err }, "could not subscribe to control messages"));
  const ends = new SessionEnds({
    endLocal: (sid, reason) => endLocal(sessionRoom(sid), reason),
    broadcast: (sid, reason) => backend.topics.publish(sessionRoom(sid), { reason } satisfies SessionEndedMessage),
    maxRetryDelayMs: settings.sessionCheckIntervalMs,
    logger,
  });
  const endSession = (sid: string, reason: SessionEndReason) => {
    const { news, sent } = ends.end(sid, reason);
    if (news) deps.metrics.sessionEnds.inc({ reason });
    return sent;
  };
  const liveness = new SessionLiveness(
    deps.auth,
    {
      intervalMs: settings.sessionCheckIntervalMs,
      idleTtlMs: settings.sessionIdleTtlMs,
      // A check costs a command per session only on a Cluster: there each is checked once per sweep.
      sweepMs: backend.auth.checksEachSession ? settings.sessionSweepIntervalMs : settings.sessionCheckIntervalMs,
    },
    endSession,
    logger,
    lifetime,
  );
  liveness.start();
  // Session ends published while this instance did not hear them were lost: check those sessions now.
  backend.topics.onRestored((covers) => liveness.recheck(covers && ((sid) => covers(sessionRoom(sid)))));

  const rooms = new Rooms(
    io,
    delivery,
    backend.presence,
    {
      instanceId: settings.instanceId,
      canJoin: deps.canJoin ?? (() => false),
      roomsOf,
      intervalMs: settings.sessionCheckIntervalMs,
      limits: settings.roomLimits,
      maxPresenceBytes: settings.maxPresenceBytes,
      logger,
    },
    lifetime,
  );
  rooms.start();
  // Room instructions from the host, sent by any instance (the sender applied its own already:
  // it knows its messages by an id of this process, not the configurable instance id).
  const controlSender = randomUUID();
  const applyRoomControl = (control: RoomControl) =>
    rooms
      .control(control, (tag) => sessions.of(tag))
      .catch((err: unknown) => logger.warn({ err }, "room control failed"));
  backend.control
    .subscribe((message) => {
      const parsed = parseRoomControl(message);
      if (parsed && parsed.from !== controlSender) void applyRoomControl(parsed.roomControl);
    })
    .catch((err: unknown) => logger.error({ err }, "could not subscribe to room control messages"));
  const roomControl = async (control: RoomControl) => {
    const local = applyRoomControl(control);
    await backend.control.publish({ roomControl: control, from: controlSender } satisfies RoomControlMessage);
    await local;
  };
  const admission = new Admission(settings.admission, deps.metrics);
  admission.start();
  const capacity = new SocketCapacity(settings.maxSockets, deps.metrics, logger, lifetime);
  const socketCounts = new SocketCounter(
    { perSession: settings.socketLimits.socketsPerSession, perUser: settings.socketLimits.socketsPerUser },
    lifetime,
  );
  // Tether's own events are run by the guard once validated: no listener per socket.
  const guard = new EventGuard(settings.socketLimits, deps.handlers, settings.instanceId, logger, {
    [ClientEvent.Echo]: echo as BuiltinListeners[string],
    ...roomEvents(rooms),
    ...historyEvents(rooms, deps.history, settings.history),
  });
  // The main namespace's sockets are made guarded, with Tether's slots from the start.
  makeSocketsGuarded(io.of("/"), guard.run);
  const tickets = new SocketTickets(io, deps.auth, settings.resumeTicketTtlMs);
  tickets.start();
  io.use(
    handshakeMiddleware({
      instanceId: settings.instanceId,
      auth: deps.auth,
      delivery,
      tickets,
      roomsOf,
      rooms,
      socketCounts,
      sessions,
      admission,
      capacity,
      attempts: new ConnectAttempts(),
      lifetime,
      metrics: deps.metrics,
      isDraining: deps.isDraining,
      logger,
    }),
  );
  io.on("connection", (socket) => {
    liveness.track(socket);
    rooms.connected(socket);
    void delivery.resume(socket);
    runConnectionHooks(socket, deps.hooks ?? {}, settings.instanceId, logger);
  });
  const stop = () => {
    tickets.stop();
    admission.stop();
    liveness.stop();
    rooms.stop();
    delivery.stop();
    sessions.stop();
    ends.stop();
  };
  const ephemeral = ephemeralSink(io, (stream) => delivery.socketIdsOf(stream), backend.kind === "redis");
  return { io, liveness, delivery, admission, capacity, rooms, ephemeral, endSession, roomControl, stop };
}

/** `echo`: acknowledges with its payload (one listener for every socket, called by the guard). */
function echo(payload: unknown, ack?: unknown): void {
  if (typeof ack === "function") ack(payload);
}
