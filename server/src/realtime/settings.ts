import { MAX_HISTORY_LIMIT, MAX_SOCKET_MESSAGE_BYTES, PAYLOAD_SHAPE_LIMITS } from "@tether/shared";
import { z } from "zod";
import type { AuthConfig } from "../auth/settings.js";
import { count, countOrOff, duration, durationOrOff, type EnvOf, limit, optionalText, size } from "../env/values.js";
import type { StoreConfig } from "../store/settings.js";
import type { HistoryLimits } from "../store/types.js";
import type { AdmissionLimits } from "./admission.js";
import type { SocketLimits } from "./guards.js";
import type { HistoryBounds } from "./history.js";
import { PUBLISH_DEFAULTS, type PublishPolicy } from "./publisher.js";
import { ROOM_LIMIT_DEFAULTS, type RoomLimits } from "./room-bounds.js";
import { PRESENCE_DATA_LIMITS } from "./room-presence.js";

export const REALTIME_DEFAULTS = {
  pingIntervalMs: 25_000,
  pingTimeoutMs: 20_000,
  recoveryWindowMs: 10 * 60 * 1000,
  /** Most events kept per user or room stream for replay. */
  recoveryMaxEvents: 1_000,
  /** Admission control: handshakes per second one instance takes, sustained, before it turns more away; a quiet instance takes a burst of two seconds of it at once (above what one core serves: the event-loop delay usually speaks first). */
  admissionHandshakesPerSecond: 1_000,
  /** Admission control: event-loop delay (p99 over a second) past which handshakes are turned away. */
  admissionMaxEventLoopDelayMs: 250,
  /**
   * How often a delivery probe goes through each subscriber connection (per shard on a Cluster): one
   * that stopped delivering is reconnected and every stream re-read (a lost last event arrives within two).
   */
  streamCheckIntervalMs: 5_000,
  /**
   * How long a stream's and a session's subscriptions stay after their last socket here left: a
   * client that comes back (a blip, a reload) finds them in place, with no unsubscribe and subscribe
   * and no store read to learn it missed nothing. Costs the messages of streams nobody here reads, meanwhile.
   */
  subscriptionLingerMs: 30_000,
  /**
   * On a Redis Cluster, the period within which each connected session's existence is checked (a
   * check is a command per session there, spread evenly over the period): 10,000 idle sessions cost
   * ≈ 17 commands/s. A missed end message is found at once (the sessions concerned are checked
   * when their session-end subscription comes back); this bounds only a silent disappearance (an
   * eviction, an operator's DEL, a FLUSHALL). On one Redis every session is checked every session
   * check interval.
   */
  sessionSweepIntervalMs: 10 * 60 * 1000,
  /** Largest accepted Socket.IO message. */
  maxSocketMessageBytes: MAX_SOCKET_MESSAGE_BYTES,
  /** Events one socket may send per second before it is throttled. */
  socketEventsPerSecond: 50,
  /** Events one login session may send per second across its sockets on one instance (tabs together). */
  sessionEventsPerSecond: 100,
  /** Rooms with history one socket may be in (granted by `roomsOf` or joined at run time). */
  maxRoomsPerSocket: 100,
  /** Sockets one login session may hold on one instance (tabs × reconnect overlap). */
  maxSocketsPerSession: 32,
  /**
   * Time a connection gets to send its Socket.IO CONNECT. Socket.IO's own connect timeout is 45 s:
   * a socket that never authenticates held a connection slot that long.
   */
  connectTimeoutMs: 10_000,
  /** History on demand: events a request without a `limit` gets. */
  historyLimit: 50,
  /** History on demand: the most events one request may ask for. */
  historyMaxEvents: 100,
} as const;

/** Per-socket bounds on what a client can make the server hold (see `SocketLimits`). */
export const SOCKET_DEFAULTS = {
  /**
   * Sockets one user may hold on one instance, all its sessions together (31 logins at the
   * per-session bound). High: the built-in API-key login signs everyone in as one user.
   */
  socketsPerUser: 1_000,
  /** A `tether.handle` handler's deadline: then its call is answered UNAVAILABLE and its signal aborted. */
  handlerTimeoutMs: 15_000,
  /** Handler calls one socket may have running at once. */
  callsPerSocket: 16,
  /** Handler calls one user may have running at once on one instance (all its sockets and sessions). */
  callsPerUser: 64,
  /** Replayed bytes one socket may have waiting to be sent before the replay waits for it to drain. */
  replayBufferBytes: 1024 * 1024,
} as const;

/** The realtime variables and their validation. */
export const realtimeEnv = {
  TETHER_PING_INTERVAL: duration(REALTIME_DEFAULTS.pingIntervalMs),
  TETHER_PING_TIMEOUT: duration(REALTIME_DEFAULTS.pingTimeoutMs),
  TETHER_RECOVERY_WINDOW: duration(REALTIME_DEFAULTS.recoveryWindowMs),
  TETHER_RECOVERY_MAX_EVENTS: count(1, 1_000_000, REALTIME_DEFAULTS.recoveryMaxEvents),
  /** Unset: derived from the idle TTL (a third of it, at most 30 s; see `loadConfig`). */
  TETHER_SESSION_CHECK_INTERVAL: optionalText.pipe(z.string().optional()),
  /** Unset: 10m, or the session check interval when that is longer (see `loadConfig`). */
  TETHER_SESSION_SWEEP_INTERVAL: optionalText.pipe(z.string().optional()),
  /** The delivery probe's interval: a probe has half of it to return, so not shorter than a busy event loop's lag. */
  TETHER_STREAM_CHECK_INTERVAL: duration(REALTIME_DEFAULTS.streamCheckIntervalMs).pipe(
    z.number().min(100, "must be at least 100ms (a probe has half of it to come back)"),
  ),
  /** How long subscriptions stay after their last socket here left (`off`: unsubscribe at once). */
  TETHER_SUBSCRIPTION_LINGER: durationOrOff(REALTIME_DEFAULTS.subscriptionLingerMs),
  /** How long a publish retries transient store failures (a failover) before it rejects UNAVAILABLE. */
  TETHER_PUBLISH_DEADLINE: duration(PUBLISH_DEFAULTS.deadlineMs),
  /** Replicas that must confirm a publish (Redis WAIT) before it is acknowledged; 0: the primary's word. */
  TETHER_PUBLISH_REPLICAS: count(0, 100, PUBLISH_DEFAULTS.replicas),
  TETHER_RATE_LIMIT_REFUSED_EVENTS: limit("20/1m"),
  TETHER_SOCKET_EVENTS_PER_SECOND: count(1, 100_000, REALTIME_DEFAULTS.socketEventsPerSecond),
  TETHER_SESSION_EVENTS_PER_SECOND: count(1, 100_000, REALTIME_DEFAULTS.sessionEventsPerSecond),
  TETHER_MAX_SOCKETS_PER_SESSION: count(1, 10_000, REALTIME_DEFAULTS.maxSocketsPerSession),
  TETHER_MAX_SOCKETS_PER_USER: count(1, 1_000_000, SOCKET_DEFAULTS.socketsPerUser),
  TETHER_MAX_PAYLOAD_DEPTH: count(1, 1_000, PAYLOAD_SHAPE_LIMITS.maxDepth),
  TETHER_HANDLER_TIMEOUT: duration(SOCKET_DEFAULTS.handlerTimeoutMs),
  TETHER_MAX_CALLS_PER_SOCKET: count(1, 10_000, SOCKET_DEFAULTS.callsPerSocket),
  TETHER_MAX_CALLS_PER_USER: count(1, 100_000, SOCKET_DEFAULTS.callsPerUser),
  TETHER_REPLAY_BUFFER: size(SOCKET_DEFAULTS.replayBufferBytes),
  /** The most events one history request (socket, host or HTTP) may ask for; a request without a limit gets 50 (or this, if lower). */
  TETHER_HISTORY_MAX_EVENTS: count(1, MAX_HISTORY_LIMIT, REALTIME_DEFAULTS.historyMaxEvents),
  /** A room member's presence data (set at `room:join`, replaced by `presence:set`), at most, as JSON. */
  TETHER_MAX_PRESENCE_BYTES: size(PRESENCE_DATA_LIMITS.maxBytes),
  /** Distinct rooms with history one user may be in on one instance, its sockets and sessions together (`off`: none). */
  TETHER_MAX_ROOMS_PER_USER: countOrOff(ROOM_LIMIT_DEFAULTS.perUser),
  /** Distinct rooms with history one instance holds sockets in (`off`: none). */
  TETHER_MAX_ROOMS_PER_INSTANCE: countOrOff(ROOM_LIMIT_DEFAULTS.perInstance),
  TETHER_ADMISSION_HANDSHAKES_PER_SECOND: countOrOff(REALTIME_DEFAULTS.admissionHandshakesPerSecond),
  TETHER_ADMISSION_MAX_EVENT_LOOP_DELAY: durationOrOff(REALTIME_DEFAULTS.admissionMaxEventLoopDelayMs),
  /** Time a connection gets to complete the Socket.IO handshake (send CONNECT) before it is closed. */
  TETHER_CONNECT_TIMEOUT: duration(REALTIME_DEFAULTS.connectTimeoutMs),
};

/** The realtime part of the configuration. */
export interface RealtimeConfig {
  pingIntervalMs: number;
  pingTimeoutMs: number;
  recoveryWindowMs: number;
  /** Most events kept per user or room stream. */
  recoveryMaxEvents: number;
  /** How often live streams are compared with the store's head. */
  streamCheckIntervalMs: number;
  subscriptionLingerMs: number;
  /** How often each instance renews its connected sessions and checks they still exist. */
  sessionCheckIntervalMs: number;
  /**
   * On a Redis Cluster (a command per session checked), each connected session's existence is
   * checked once per this period instead of every round; at least `sessionCheckIntervalMs`.
   */
  sessionSweepIntervalMs: number;
  /**
   * Publishing: transient store failures are retried until `deadlineMs`; with `replicas`,
   * a publish is acknowledged once that many replicas confirmed it (Redis only).
   */
  publish: { deadlineMs: number; replicas: number };
  socketLimits: SocketLimits;
  /** Admission control under a reconnect storm. */
  admission: AdmissionLimits;
  /** Rooms per user and per instance (0: no bound); per socket is `REALTIME_DEFAULTS.maxRoomsPerSocket`. */
  roomLimits: RoomLimits;
  /** A connection that has not completed the Socket.IO handshake by then is closed. */
  connectTimeoutMs: number;
  /** History on demand: the most events per request, and bytes per page (`TETHER_REPLAY_BUFFER`). */
  history: HistoryBounds;
  /** A room member's presence data, at most (JSON bytes). */
  maxPresenceBytes: number;
  /** Socket.IO connections this instance holds; past it, handshakes get UNAVAILABLE (see `resolveCapacity`). */
  maxSockets: number;
}

/** The realtime settings from their variables; the session intervals are derived with the idle TTL's. */
export function realtimeConfig(
  e: EnvOf<typeof realtimeEnv>,
  sessions: { checkIntervalMs: number; sweepIntervalMs: number },
  maxSockets: number,
): RealtimeConfig {
  return {
    pingIntervalMs: e.TETHER_PING_INTERVAL,
    pingTimeoutMs: e.TETHER_PING_TIMEOUT,
    recoveryWindowMs: e.TETHER_RECOVERY_WINDOW,
    recoveryMaxEvents: e.TETHER_RECOVERY_MAX_EVENTS,
    streamCheckIntervalMs: e.TETHER_STREAM_CHECK_INTERVAL,
    subscriptionLingerMs: e.TETHER_SUBSCRIPTION_LINGER,
    sessionCheckIntervalMs: sessions.checkIntervalMs,
    sessionSweepIntervalMs: sessions.sweepIntervalMs,
    publish: { deadlineMs: e.TETHER_PUBLISH_DEADLINE, replicas: e.TETHER_PUBLISH_REPLICAS },
    socketLimits: {
      eventsPerSecond: e.TETHER_SOCKET_EVENTS_PER_SECOND,
      sessionEventsPerSecond: e.TETHER_SESSION_EVENTS_PER_SECOND,
      socketsPerSession: e.TETHER_MAX_SOCKETS_PER_SESSION,
      socketsPerUser: e.TETHER_MAX_SOCKETS_PER_USER,
      maxPayloadDepth: e.TETHER_MAX_PAYLOAD_DEPTH,
      handlerTimeoutMs: e.TETHER_HANDLER_TIMEOUT,
      callsPerSocket: e.TETHER_MAX_CALLS_PER_SOCKET,
      callsPerUser: e.TETHER_MAX_CALLS_PER_USER,
      replayBufferBytes: e.TETHER_REPLAY_BUFFER,
      refusedEvents: e.TETHER_RATE_LIMIT_REFUSED_EVENTS,
    },
    admission: {
      handshakesPerSecond: e.TETHER_ADMISSION_HANDSHAKES_PER_SECOND,
      maxEventLoopDelayMs: e.TETHER_ADMISSION_MAX_EVENT_LOOP_DELAY,
    },
    roomLimits: { perUser: e.TETHER_MAX_ROOMS_PER_USER, perInstance: e.TETHER_MAX_ROOMS_PER_INSTANCE },
    connectTimeoutMs: e.TETHER_CONNECT_TIMEOUT,
    history: { maxLimit: e.TETHER_HISTORY_MAX_EVENTS, maxBytes: e.TETHER_REPLAY_BUFFER },
    maxPresenceBytes: e.TETHER_MAX_PRESENCE_BYTES,
    maxSockets,
  };
}

/** History limits from config: the window, the length cap, and how long a stream's last id outlives it. */
export function historyLimits(
  config: Pick<RealtimeConfig, "recoveryWindowMs" | "recoveryMaxEvents"> & Pick<AuthConfig, "sessionMaxAgeMs">,
): HistoryLimits {
  return {
    windowMs: config.recoveryWindowMs,
    maxLength: config.recoveryMaxEvents,
    lastIdTtlMs: Math.max(config.recoveryWindowMs, config.sessionMaxAgeMs),
  };
}

/**
 * The publishers' policy from config: retries until TETHER_PUBLISH_DEADLINE, WAIT for
 * TETHER_PUBLISH_REPLICAS replicas (at most half the command timeout per attempt, so
 * WAIT answers before the client gives up on it).
 */
export function publishPolicy(
  config: Pick<RealtimeConfig, "publish"> & Pick<StoreConfig, "redisCommandTimeoutMs">,
): PublishPolicy {
  return {
    deadlineMs: config.publish.deadlineMs,
    replicas: config.publish.replicas,
    replicaTimeoutMs: Math.max(1, Math.floor(config.redisCommandTimeoutMs / 2)),
  };
}
