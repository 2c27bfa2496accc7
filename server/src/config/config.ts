import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { closest } from "fastest-levenshtein";
import type { z } from "zod";
import type { LimitSpecs } from "../auth/limits.js";
import type { AdmissionLimits } from "../realtime/admission.js";
import type { SocketLimits } from "../realtime/guards.js";
import type { RoomLimits } from "../realtime/room-bounds.js";
import type { RedisTarget } from "../store/redis-connection.js";
import { parseDuration } from "./duration.js";
import { type Env, EnvSchema } from "./schema.js";

/** The default session check interval never exceeds this: revocation is noticed within it. */
const MAX_SESSION_CHECK_INTERVAL_MS = 30_000;

/** Typed, validated configuration. Env is read here only; modules receive this. */
export interface TetherConfig {
  port: number;
  host: string;
  /** Unset: embedded mode, in-process stores, one instance only. */
  redis: RedisTarget | undefined;
  /** The (first) Redis URL, for display. */
  redisUrl: string | undefined;
  /** Unset: generated once and shared through the store. */
  apiKey: string | undefined;
  /** Unset: generated once and shared through the store. The first signs, all verify. */
  sessionSecrets: string[];
  sessionIdleTtlMs: number;
  sessionMaxAgeMs: number;
  wsTokenTtlMs: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  recoveryWindowMs: number;
  /** Most events kept per user or room stream. */
  recoveryMaxEvents: number;
  /** How often live streams are compared with the store's head. */
  streamCheckIntervalMs: number;
  /** Life of a resume ticket; 0 = no tickets (every reconnect fetches a token). */
  resumeTicketTtlMs: number;
  /** How often each instance renews its connected sessions and checks they still exist. */
  sessionCheckIntervalMs: number;
  redisCommandTimeoutMs: number;
  /** How often each instance checks that Redis still holds the generated secrets (and puts them back). */
  secretsCheckIntervalMs: number;
  /** Empty: same origin only. */
  allowedOrigins: string[];
  /** express `trust proxy` value, already parsed. */
  trustProxy: boolean | number | string | undefined;
  publishKey: string | undefined;
  /**
   * Publishing: transient store failures are retried until `deadlineMs`; with `replicas`,
   * a publish is acknowledged once that many replicas confirmed it (Redis only).
   */
  publish: { deadlineMs: number; replicas: number };
  /** Bearer key for `GET /metrics`; unset: open. */
  metricsKey: string | undefined;
  /** Prefix of every Tether HTTP route: "" (the root) or e.g. `/tether`. */
  basePath: string;
  /** The Socket.IO path, e.g. `/socket.io/` or `/tether/socket.io/`. */
  socketPath: string;
  /** Limits of a standalone server's HTTP server (see `httpServerOptions`). */
  http: HttpLimits;
  /** False: every limit is off (`TETHER_RATE_LIMITS=off`). */
  rateLimits: boolean;
  limits: LimitSpecs;
  socketLimits: SocketLimits;
  /** Admission control under a reconnect storm. */
  admission: AdmissionLimits;
  /** Rooms per user and per instance (0: no bound); per socket is `DEFAULTS.maxRoomsPerSocket`. */
  roomLimits: RoomLimits;
  /** Port of the HAProxy agent check (this instance's weight); undefined: none. */
  agentPort: number | undefined;
  /** Address the agent port binds to (`127.0.0.1` unless set: it need not face clients). */
  agentHost: string;
  /** A connection that has not completed the Socket.IO handshake by then is closed. */
  connectTimeoutMs: number;
  /** Open connections per client address (0: no limit); see `gateConnections`. */
  maxConnectionsPerIp: number;
  instanceId: string;
  /** On SIGTERM, clients are moved to other instances over this long. */
  drainWindowMs: number;
  /** On SIGTERM, the process exits by this deadline whatever is left. */
  shutdownTimeoutMs: number;
  logLevel: Env["LOG_LEVEL"];
  /** NODE_ENV=production: secrets must be given, never generated (see `requireGivenSecrets`). */
  production: boolean;
  /** Things worth telling the operator at start, such as a mistyped TETHER_* variable. */
  warnings: string[];
}

/** The HTTP server's timeouts and connection cap. */
export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
}

/** A configuration error: one readable line per bad variable. */
export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    /** Mistyped variable names and the like: often the cause of a problem. */
    readonly warnings: string[] = [],
  ) {
    super(`Invalid configuration:\n${problems.map((problem) => `  ${problem}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** One line per problem, each once, with the value shown once (never a secret's). */
function describe(issues: z.core.$ZodIssue[], env: Record<string, string | undefined>): string[] {
  const lines = issues.map((issue) => {
    const name = String(issue.path[0] ?? "environment");
    const given = env[name];
    const shown = given === undefined || /KEY|SECRET/.test(name) ? "" : ` (got "${given}")`;
    return `${name}: ${issue.message}${shown}`;
  });
  return [...new Set(lines)];
}

/**
 * The secrets. Each may also be given as a file, `<name>_FILE` holding its path
 * (Docker and Kubernetes secrets): the file's content, one trailing newline dropped.
 */
export const SECRET_SETTINGS = [
  "TETHER_API_KEY",
  "TETHER_SESSION_SECRET",
  "TETHER_PUBLISH_KEY",
  "TETHER_METRICS_KEY",
] as const;

/** The environment with every `<secret>_FILE` read into `<secret>`, and a line per file that could not be used. */
function readSecretFiles(env: Record<string, string | undefined>): {
  env: Record<string, string | undefined>;
  problems: string[];
} {
  const resolved = { ...env };
  const problems: string[] = [];
  for (const name of SECRET_SETTINGS) {
    const path = env[`${name}_FILE`]?.trim();
    if (!path) continue;
    if (env[name]?.trim()) {
      problems.push(`${name}_FILE: set either ${name} or ${name}_FILE, not both`);
      continue;
    }
    let content: string;
    try {
      content = readFileSync(path, "utf8");
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      problems.push(`${name}_FILE: cannot read ${path} (${reason})`);
      continue;
    }
    const value = content.replace(/\r?\n$/, "");
    if (value.trim() === "") problems.push(`${name}_FILE: ${path} is empty`);
    else resolved[name] = value;
  }
  return { env: resolved, problems };
}

/** Variables under the TETHER_ prefix that are not settings: the test suite's own. */
const NOT_SETTINGS = /^TETHER_TEST_/;

/**
 * A warning for each TETHER_* variable that is no setting (a typo would otherwise
 * be ignored in silence), naming the nearest setting. Secrets may also come as `<name>_FILE`.
 */
function unknownVariables(env: Record<string, string | undefined>): string[] {
  const settings = Object.keys(EnvSchema.shape);
  const known = new Set([...settings, ...SECRET_SETTINGS.map((name) => `${name}_FILE`)]);
  return Object.keys(env)
    .filter((name) => name.startsWith("TETHER_") && !known.has(name) && !NOT_SETTINGS.test(name))
    .sort()
    .map((name) => `${name} is not a Tether setting and is ignored; did you mean ${closest(name, [...known])}?`);
}

function parseTrustProxy(text: string | undefined): TetherConfig["trustProxy"] {
  if (text === undefined) return undefined;
  if (text === "true") return true;
  if (text === "false") return false;
  if (/^\d+$/.test(text)) return Number(text);
  return text;
}

/**
 * Reads and validates the configuration from an environment (process.env by
 * default), or throws a ConfigError naming each bad variable.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): TetherConfig {
  const files = readSecretFiles(env);
  const parsed = EnvSchema.safeParse(files.env);
  if (!parsed.success || files.problems.length > 0) {
    const invalid = parsed.success ? [] : describe(parsed.error.issues, files.env);
    throw new ConfigError([...files.problems, ...invalid], unknownVariables(env));
  }
  const e = parsed.data;
  const problems: string[] = [];
  if (e.TETHER_SESSION_MAX_AGE < e.TETHER_SESSION_IDLE_TTL) {
    problems.push("TETHER_SESSION_MAX_AGE: must be at least TETHER_SESSION_IDLE_TTL");
  }
  if (e.REDIS_URL.length > 1 && e.TETHER_REDIS_CLUSTER !== "on") {
    problems.push("REDIS_URL: several URLs are only for a Redis Cluster (set TETHER_REDIS_CLUSTER=on)");
  }
  if (e.TETHER_DRAIN_WINDOW >= e.TETHER_SHUTDOWN_TIMEOUT) {
    problems.push("TETHER_DRAIN_WINDOW: must be shorter than TETHER_SHUTDOWN_TIMEOUT");
  }
  if (e.TETHER_PUBLISH_KEY !== undefined && e.TETHER_PUBLISH_KEY === e.TETHER_API_KEY) {
    problems.push("TETHER_PUBLISH_KEY: must differ from TETHER_API_KEY");
  }
  // One address adds at most its own budget to the breaker per window (two, across a window edge).
  const { TETHER_RATE_LIMIT_LOGIN: perAddress, TETHER_RATE_LIMIT_LOGIN_GLOBAL: breaker } = e;
  const oneAddressMax = perAddress.points * (Math.ceil(breaker.durationMs / perAddress.durationMs) + 1);
  if (breaker.points <= oneAddressMax) {
    problems.push(
      `TETHER_RATE_LIMIT_LOGIN_GLOBAL: must allow more than one address can spend (${oneAddressMax} per window with TETHER_RATE_LIMIT_LOGIN)`,
    );
  }
  const checkInterval =
    e.TETHER_SESSION_CHECK_INTERVAL === undefined
      ? Math.min(MAX_SESSION_CHECK_INTERVAL_MS, Math.floor(e.TETHER_SESSION_IDLE_TTL / 3))
      : parseDuration(e.TETHER_SESSION_CHECK_INTERVAL);
  if (e.TETHER_HTTP_HEADERS_TIMEOUT > e.TETHER_HTTP_REQUEST_TIMEOUT) {
    problems.push("TETHER_HTTP_HEADERS_TIMEOUT: must not exceed TETHER_HTTP_REQUEST_TIMEOUT");
  }
  if (checkInterval === undefined) {
    problems.push(`TETHER_SESSION_CHECK_INTERVAL: expected a duration such as 500ms, 30s, 5m or 7d`);
  } else if (checkInterval >= e.TETHER_SESSION_IDLE_TTL) {
    problems.push("TETHER_SESSION_CHECK_INTERVAL: must be shorter than TETHER_SESSION_IDLE_TTL");
  }
  if (problems.length > 0 || checkInterval === undefined) throw new ConfigError(problems, unknownVariables(env));
  return {
    port: e.PORT,
    host: e.HOST,
    redis:
      e.REDIS_URL.length === 0
        ? undefined
        : e.TETHER_REDIS_CLUSTER === "on"
          ? { mode: "cluster", urls: e.REDIS_URL }
          : { mode: "standalone", url: e.REDIS_URL[0] ?? "" },
    redisUrl: e.REDIS_URL[0],
    apiKey: e.TETHER_API_KEY,
    sessionSecrets: e.TETHER_SESSION_SECRET,
    sessionIdleTtlMs: e.TETHER_SESSION_IDLE_TTL,
    sessionMaxAgeMs: e.TETHER_SESSION_MAX_AGE,
    wsTokenTtlMs: e.TETHER_WS_TOKEN_TTL,
    pingIntervalMs: e.TETHER_PING_INTERVAL,
    pingTimeoutMs: e.TETHER_PING_TIMEOUT,
    recoveryWindowMs: e.TETHER_RECOVERY_WINDOW,
    recoveryMaxEvents: e.TETHER_RECOVERY_MAX_EVENTS,
    streamCheckIntervalMs: e.TETHER_STREAM_CHECK_INTERVAL,
    resumeTicketTtlMs: e.TETHER_RESUME_TICKET_TTL,
    sessionCheckIntervalMs: checkInterval,
    redisCommandTimeoutMs: e.TETHER_REDIS_COMMAND_TIMEOUT,
    secretsCheckIntervalMs: e.TETHER_SECRETS_CHECK_INTERVAL,
    allowedOrigins: e.TETHER_ALLOWED_ORIGINS,
    trustProxy: parseTrustProxy(e.TETHER_TRUST_PROXY),
    publishKey: e.TETHER_PUBLISH_KEY,
    publish: { deadlineMs: e.TETHER_PUBLISH_DEADLINE, replicas: e.TETHER_PUBLISH_REPLICAS },
    metricsKey: e.TETHER_METRICS_KEY,
    basePath: e.TETHER_BASE_PATH,
    socketPath: `${e.TETHER_SOCKET_PATH || `${e.TETHER_BASE_PATH}/socket.io`}/`,
    http: {
      headersTimeoutMs: e.TETHER_HTTP_HEADERS_TIMEOUT,
      requestTimeoutMs: e.TETHER_HTTP_REQUEST_TIMEOUT,
      keepAliveTimeoutMs: e.TETHER_HTTP_KEEP_ALIVE_TIMEOUT,
      maxConnections: e.TETHER_HTTP_MAX_CONNECTIONS,
    },
    rateLimits: e.TETHER_RATE_LIMITS === "on",
    limits: {
      login: e.TETHER_RATE_LIMIT_LOGIN,
      loginAccount: e.TETHER_RATE_LIMIT_LOGIN_ACCOUNT,
      loginGlobal: e.TETHER_RATE_LIMIT_LOGIN_GLOBAL,
      token: e.TETHER_RATE_LIMIT_WS_TOKEN,
      handshakeSession: e.TETHER_RATE_LIMIT_HANDSHAKE_SESSION,
      handshakeIp: e.TETHER_RATE_LIMIT_HANDSHAKE_IP,
    },
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
    agentPort: e.TETHER_AGENT_PORT,
    agentHost: e.TETHER_AGENT_HOST,
    connectTimeoutMs: e.TETHER_CONNECT_TIMEOUT,
    maxConnectionsPerIp: e.TETHER_MAX_CONNECTIONS_PER_IP,
    instanceId: e.TETHER_INSTANCE_ID ?? `${hostname()}-${randomBytes(3).toString("hex")}`,
    drainWindowMs: e.TETHER_DRAIN_WINDOW,
    shutdownTimeoutMs: e.TETHER_SHUTDOWN_TIMEOUT,
    logLevel: e.LOG_LEVEL,
    production: env.NODE_ENV === "production",
    warnings: unknownVariables(env),
  };
}

/**
 * With NODE_ENV=production nothing is generated where a fleet could split: the
 * session secret must be given, and the API key too when the built-in login is
 * used (a host app's own `login` needs none). Throws a ConfigError otherwise.
 * Generated secrets stay a development convenience.
 */
export function requireGivenSecrets(config: TetherConfig, { builtInLogin }: { builtInLogin: boolean }): void {
  if (!config.production) return;
  const missing: string[] = [];
  if (config.sessionSecrets.length === 0) missing.push("TETHER_SESSION_SECRET");
  if (builtInLogin && config.apiKey === undefined) missing.push("TETHER_API_KEY");
  if (missing.length === 0) return;
  throw new ConfigError(
    missing.map(
      (name) =>
        `${name}: required with NODE_ENV=production (set it, or ${name}_FILE to a file holding it; e.g. openssl rand -base64 48)`,
    ),
    config.warnings,
  );
}
