import { isIP } from "node:net";
import { DEFAULTS, PAYLOAD_SHAPE_LIMITS } from "@tether/shared";
import bytes from "bytes";
import { z } from "zod";
import { LOG_LEVELS } from "../observability/logger.js";
import { PUBLISH_DEFAULTS } from "../realtime/publisher.js";
import { ROOM_LIMIT_DEFAULTS } from "../realtime/room-bounds.js";
import { parseDuration } from "./duration.js";

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

const duration = (fallbackMs: number) =>
  z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined || text.trim() === "") return fallbackMs;
      const value = parseDuration(text);
      if (value === undefined) {
        ctx.addIssue({ code: "custom", message: "expected a duration such as 500ms, 30s, 5m or 7d" });
        return z.NEVER;
      }
      return value;
    });

/** A duration, or `off` (or 0): 0 ms, the feature is off. */
const durationOrOff = (fallbackMs: number) =>
  z
    .string()
    .optional()
    .transform((text, ctx) => {
      const trimmed = text?.trim() ?? "";
      if (trimmed === "off" || trimmed === "0") return 0;
      if (trimmed === "") return fallbackMs;
      const value = parseDuration(trimmed);
      if (value === undefined) {
        ctx.addIssue({ code: "custom", message: "expected a duration such as 30s or 5m, or off" });
        return z.NEVER;
      }
      return value;
    });

/** A whole number, or `off` (0: the limit is off). */
const countOrOff = (fallback: number) =>
  z
    .string()
    .optional()
    .transform((text, ctx) => {
      const trimmed = text?.trim() ?? "";
      if (trimmed === "") return fallback;
      if (trimmed === "off") return 0;
      const value = Number(trimmed);
      if (!Number.isInteger(value) || value < 0) {
        ctx.addIssue({ code: "custom", message: "expected a whole number, or off" });
        return z.NEVER;
      }
      return value;
    });

/** A size in bytes: `512kb`, `1mb`, or a plain number of bytes. */
const size = (fallback: number) =>
  z
    .string()
    .optional()
    .transform((text, ctx) => {
      const trimmed = text?.trim() ?? "";
      if (trimmed === "") return fallback;
      const value = bytes.parse(trimmed);
      if (value === null || !Number.isInteger(value) || value < 1) {
        ctx.addIssue({ code: "custom", message: "expected a size such as 512kb or 1mb" });
        return z.NEVER;
      }
      return value;
    });

/** A rate limit: `N/duration`, e.g. `20/1m`. */
const limit = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((text, ctx) => {
      const value = text === undefined || text.trim() === "" ? fallback : text.trim();
      const match = /^(\d+)\s*\/\s*(.+)$/.exec(value);
      const durationMs = match?.[2] === undefined ? undefined : parseDuration(match[2]);
      if (!match || durationMs === undefined || Number(match[1]) < 1) {
        ctx.addIssue({ code: "custom", message: "expected a limit such as 20/1m (count/duration)" });
        return z.NEVER;
      }
      return { points: Number(match[1]), durationMs };
    });

const list = z
  .string()
  .optional()
  .transform((text) =>
    (text ?? "")
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== ""),
  );

const optionalText = z
  .string()
  .optional()
  .transform((text) => (text === undefined || text.trim() === "" ? undefined : text.trim()));

/** A URL path such as `/tether`: no trailing slash (dropped), no query; `/` or empty is the root (""). */
const urlPath = z
  .string()
  .optional()
  .transform((text, ctx) => {
    const value = (text ?? "").trim().replace(/\/+$/, "");
    if (value !== "" && !/^(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/.test(value)) {
      ctx.addIssue({ code: "custom", message: "expected a path such as /tether (starting with /, no query)" });
      return z.NEVER;
    }
    return value;
  });

const origin = z.string().refine((text) => {
  try {
    return new URL(text).origin === text;
  } catch {
    return false;
  }
}, "expected an origin such as https://app.example.com (scheme, host and port only, no trailing slash)");

/**
 * Connection admission defaults. Socket.IO's own connect timeout is 45 s: a socket
 * that never authenticates held a connection slot that long.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Generous: behind a proxy without TETHER_TRUST_PROXY every client shares the proxy's address. */
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 500;
/** The agent port answers only on loopback unless told otherwise (compose sets 0.0.0.0 on its private network). */
export const DEFAULT_AGENT_HOST = "127.0.0.1";

/** Environment variables of the public contract and their validation. */
export const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65_535).default(DEFAULTS.port),
  HOST: z.string().min(1).default(DEFAULTS.host),
  /** One URL; with TETHER_REDIS_CLUSTER=on, a comma list of cluster seed nodes. */
  REDIS_URL: list.pipe(z.array(z.string().regex(/^rediss?:\/\/[^,\s]+$/, "expected a redis:// or rediss:// URL"))),
  TETHER_REDIS_CLUSTER: z.enum(["on", "off"]).default("off"),
  TETHER_API_KEY: optionalText.pipe(z.string().min(16, "expected at least 16 characters").optional()),
  TETHER_SESSION_SECRET: list.pipe(z.array(z.string().min(32, "each secret needs at least 32 characters"))),
  TETHER_SESSION_IDLE_TTL: duration(DEFAULTS.sessionIdleTtlMs),
  TETHER_SESSION_MAX_AGE: duration(DEFAULTS.sessionMaxAgeMs),
  TETHER_WS_TOKEN_TTL: duration(DEFAULTS.wsTokenTtlMs),
  TETHER_PING_INTERVAL: duration(DEFAULTS.pingIntervalMs),
  TETHER_PING_TIMEOUT: duration(DEFAULTS.pingTimeoutMs),
  TETHER_RECOVERY_WINDOW: duration(DEFAULTS.recoveryWindowMs),
  /** Unset: derived from the idle TTL (a third of it, at most 30 s). */
  TETHER_SESSION_CHECK_INTERVAL: optionalText.pipe(z.string().optional()),
  /** The delivery probe's interval: a probe has half of it to return, so not shorter than a busy event loop's lag. */
  TETHER_STREAM_CHECK_INTERVAL: duration(DEFAULTS.streamCheckIntervalMs).pipe(
    z.number().min(100, "must be at least 100ms (a probe has half of it to come back)"),
  ),
  TETHER_RESUME_TICKET_TTL: durationOrOff(DEFAULTS.resumeTicketTtlMs),
  TETHER_RECOVERY_MAX_EVENTS: z.coerce.number().int().min(1).max(1_000_000).default(DEFAULTS.recoveryMaxEvents),
  TETHER_REDIS_COMMAND_TIMEOUT: duration(DEFAULTS.redisCommandTimeoutMs),
  TETHER_SECRETS_CHECK_INTERVAL: duration(DEFAULTS.secretsCheckIntervalMs),
  TETHER_ALLOWED_ORIGINS: list.pipe(z.array(origin)),
  TETHER_TRUST_PROXY: optionalText,
  TETHER_PUBLISH_KEY: optionalText.pipe(z.string().min(16, "expected at least 16 characters").optional()),
  /** How long a publish retries transient store failures (a failover) before it rejects UNAVAILABLE. */
  TETHER_PUBLISH_DEADLINE: duration(PUBLISH_DEFAULTS.deadlineMs),
  /** Replicas that must confirm a publish (Redis WAIT) before it is acknowledged; 0: the primary's word. */
  TETHER_PUBLISH_REPLICAS: z.coerce.number().int().min(0).max(100).default(PUBLISH_DEFAULTS.replicas),
  /** Bearer key for `GET /metrics`. Unset: /metrics is open (scrape it from a private network). */
  TETHER_METRICS_KEY: optionalText.pipe(z.string().min(16, "expected at least 16 characters").optional()),
  /** Prefix of every Tether HTTP route (and, by default, of the Socket.IO path). */
  TETHER_BASE_PATH: urlPath,
  /** The Socket.IO path. Unset: `<TETHER_BASE_PATH>/socket.io/`. */
  TETHER_SOCKET_PATH: urlPath,
  TETHER_HTTP_HEADERS_TIMEOUT: duration(DEFAULTS.httpHeadersTimeoutMs),
  TETHER_HTTP_REQUEST_TIMEOUT: duration(DEFAULTS.httpRequestTimeoutMs),
  TETHER_HTTP_KEEP_ALIVE_TIMEOUT: duration(DEFAULTS.httpKeepAliveTimeoutMs),
  TETHER_HTTP_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(10_000_000).default(DEFAULTS.httpMaxConnections),
  TETHER_RATE_LIMITS: z.enum(["on", "off"]).default("on"),
  TETHER_RATE_LIMIT_LOGIN: limit("20/1m"),
  TETHER_RATE_LIMIT_LOGIN_ACCOUNT: limit("10/1m"),
  TETHER_RATE_LIMIT_LOGIN_GLOBAL: limit("1000/1m"),
  TETHER_RATE_LIMIT_WS_TOKEN: limit("60/3s"),
  TETHER_RATE_LIMIT_HANDSHAKE_SESSION: limit("60/3s"),
  TETHER_RATE_LIMIT_HANDSHAKE_IP: limit("600/10s"),
  TETHER_RATE_LIMIT_REFUSED_EVENTS: limit("20/1m"),
  TETHER_INSTANCE_ID: optionalText,
  TETHER_DRAIN_WINDOW: duration(DEFAULTS.drainWindowMs),
  TETHER_SHUTDOWN_TIMEOUT: duration(DEFAULTS.shutdownTimeoutMs),
  TETHER_SOCKET_EVENTS_PER_SECOND: z.coerce.number().int().min(1).max(100_000).default(DEFAULTS.socketEventsPerSecond),
  TETHER_SESSION_EVENTS_PER_SECOND: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(DEFAULTS.sessionEventsPerSecond),
  TETHER_MAX_SOCKETS_PER_SESSION: z.coerce.number().int().min(1).max(10_000).default(DEFAULTS.maxSocketsPerSession),
  TETHER_MAX_SOCKETS_PER_USER: z.coerce.number().int().min(1).max(1_000_000).default(SOCKET_DEFAULTS.socketsPerUser),
  TETHER_MAX_PAYLOAD_DEPTH: z.coerce.number().int().min(1).max(1_000).default(PAYLOAD_SHAPE_LIMITS.maxDepth),
  TETHER_HANDLER_TIMEOUT: duration(SOCKET_DEFAULTS.handlerTimeoutMs),
  TETHER_MAX_CALLS_PER_SOCKET: z.coerce.number().int().min(1).max(10_000).default(SOCKET_DEFAULTS.callsPerSocket),
  TETHER_MAX_CALLS_PER_USER: z.coerce.number().int().min(1).max(100_000).default(SOCKET_DEFAULTS.callsPerUser),
  TETHER_REPLAY_BUFFER: size(SOCKET_DEFAULTS.replayBufferBytes),
  /** Distinct rooms with history one user may be in on one instance, its sockets and sessions together (`off`: none). */
  TETHER_MAX_ROOMS_PER_USER: countOrOff(ROOM_LIMIT_DEFAULTS.perUser),
  /** Distinct rooms with history one instance holds sockets in (`off`: none). */
  TETHER_MAX_ROOMS_PER_INSTANCE: countOrOff(ROOM_LIMIT_DEFAULTS.perInstance),
  TETHER_ADMISSION_HANDSHAKES_PER_SECOND: countOrOff(DEFAULTS.admissionHandshakesPerSecond),
  TETHER_ADMISSION_MAX_EVENT_LOOP_DELAY: durationOrOff(DEFAULTS.admissionMaxEventLoopDelayMs),
  /** Unset: no agent. A TCP port on which HAProxy's agent check reads this instance's weight. */
  TETHER_AGENT_PORT: z
    .string()
    .optional()
    .transform((text, ctx) => {
      const trimmed = text?.trim() ?? "";
      if (trimmed === "") return undefined;
      const port = Number(trimmed);
      if (!Number.isInteger(port) || port < 1 || port > 65_535) {
        ctx.addIssue({ code: "custom", message: "expected a TCP port (1-65535)" });
        return z.NEVER;
      }
      return port;
    }),
  /** Time a connection gets to complete the Socket.IO handshake (send CONNECT) before it is closed. */
  TETHER_CONNECT_TIMEOUT: duration(DEFAULT_CONNECT_TIMEOUT_MS),
  /** Open connections (HTTP keep-alive and WebSocket) per client address; `off`: no limit. */
  TETHER_MAX_CONNECTIONS_PER_IP: countOrOff(DEFAULT_MAX_CONNECTIONS_PER_IP),
  /** The address the agent port binds to. */
  TETHER_AGENT_HOST: z
    .string()
    .optional()
    .transform((text, ctx) => {
      const trimmed = text?.trim() ?? "";
      if (trimmed === "") return DEFAULT_AGENT_HOST;
      if (isIP(trimmed) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(trimmed)) {
        ctx.addIssue({
          code: "custom",
          message: "expected an IP address or a host name, such as 127.0.0.1 or 0.0.0.0",
        });
        return z.NEVER;
      }
      return trimmed;
    }),
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
});

export type Env = z.output<typeof EnvSchema>;
