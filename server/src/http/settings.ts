import { z } from "zod";
import type { Capacity } from "../env/capacity.js";
import { countOrOff, duration, type EnvOf, optionalKey, size, urlPath } from "../env/values.js";

export const HTTP_DEFAULTS = {
  port: 3000,
  host: "0.0.0.0",
  /** Largest accepted JSON body. */
  maxBodyBytes: 16 * 1024,
  /**
   * HTTP server limits (see deploy/haproxy.cfg for the proxy's side). A client gets this long to
   * send its request headers, and the whole request; an idle keep-alive connection is closed after
   * `httpKeepAliveTimeoutMs`. Upgraded WebSockets are not HTTP requests any more: none applies.
   */
  httpHeadersTimeoutMs: 10_000,
  httpRequestTimeoutMs: 30_000,
  httpKeepAliveTimeoutMs: 15_000,
  /** How often the HTTP server looks for connections past those timeouts (Node's default is 30 s). */
  httpTimeoutCheckIntervalMs: 1_000,
  /** Open connections per client address. Generous: behind a proxy without TETHER_TRUST_PROXY every client shares the proxy's address. */
  maxConnectionsPerIp: 500,
} as const;

/** A whole number from 1, or unset (derived). */
const optionalCount = z.coerce.number().int().min(1).max(10_000_000).optional();

/** The HTTP variables and their validation. */
export const httpEnv = {
  PORT: z.coerce.number().int().min(0).max(65_535).default(HTTP_DEFAULTS.port),
  HOST: z.string().min(1).default(HTTP_DEFAULTS.host),
  TETHER_PUBLISH_KEY: optionalKey,
  /** Prefix of every Tether HTTP route (and, by default, of the Socket.IO path). */
  TETHER_BASE_PATH: urlPath,
  /** The Socket.IO path. Unset: `<TETHER_BASE_PATH>/socket.io/`. */
  TETHER_SOCKET_PATH: urlPath,
  TETHER_HTTP_HEADERS_TIMEOUT: duration(HTTP_DEFAULTS.httpHeadersTimeoutMs),
  TETHER_HTTP_REQUEST_TIMEOUT: duration(HTTP_DEFAULTS.httpRequestTimeoutMs),
  TETHER_HTTP_KEEP_ALIVE_TIMEOUT: duration(HTTP_DEFAULTS.httpKeepAliveTimeoutMs),
  /**
   * The capacity caps (see `resolveCapacity`); unset: derived from the fd limit and the memory budget.
   * Open connections, WebSockets included (past it: 503 + Retry-After); open HTTP connections not
   * upgraded to WebSocket; Socket.IO connections (past it: UNAVAILABLE with `retryAfterMs`); the
   * memory sockets may take.
   */
  TETHER_HTTP_MAX_CONNECTIONS: optionalCount,
  TETHER_HTTP_MAX_KEEP_ALIVE_CONNECTIONS: optionalCount,
  TETHER_MAX_SOCKETS: optionalCount,
  TETHER_MEMORY_BUDGET: size(0),
  /** Open connections (HTTP keep-alive and WebSocket) per client address; `off`: no limit. */
  TETHER_MAX_CONNECTIONS_PER_IP: countOrOff(HTTP_DEFAULTS.maxConnectionsPerIp),
};

/** The HTTP server's timeouts and connection caps. */
export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Open connections, WebSockets included. */
  maxConnections: number;
  /** Open HTTP connections not upgraded to WebSocket; unset: no cap of their own. */
  maxKeepAliveConnections?: number;
}

/** The HTTP part of the configuration. */
export interface HttpConfig {
  port: number;
  host: string;
  publishKey: string | undefined;
  /** Prefix of every Tether HTTP route: "" (the root) or e.g. `/tether`. */
  basePath: string;
  /** The Socket.IO path, e.g. `/socket.io/` or `/tether/socket.io/`. */
  socketPath: string;
  /** Limits of a standalone server's HTTP server (see `httpServerOptions`). */
  http: HttpLimits;
  /** Open connections per client address (0: no limit); see `gateConnections`. */
  maxConnectionsPerIp: number;
  /** The caps in force and why (logged at start). */
  capacity: Capacity;
}

/** The capacity settings given (the rest is derived from the machine by `resolveCapacity`). */
export function capacitySettings(e: EnvOf<typeof httpEnv>) {
  return {
    maxConnections: e.TETHER_HTTP_MAX_CONNECTIONS,
    maxKeepAliveConnections: e.TETHER_HTTP_MAX_KEEP_ALIVE_CONNECTIONS,
    maxSockets: e.TETHER_MAX_SOCKETS,
    memoryBudgetBytes: e.TETHER_MEMORY_BUDGET || undefined,
  };
}

export function httpConfig(e: EnvOf<typeof httpEnv>, capacity: Capacity): HttpConfig {
  return {
    port: e.PORT,
    host: e.HOST,
    publishKey: e.TETHER_PUBLISH_KEY,
    basePath: e.TETHER_BASE_PATH,
    socketPath: `${e.TETHER_SOCKET_PATH || `${e.TETHER_BASE_PATH}/socket.io`}/`,
    http: {
      headersTimeoutMs: e.TETHER_HTTP_HEADERS_TIMEOUT,
      requestTimeoutMs: e.TETHER_HTTP_REQUEST_TIMEOUT,
      keepAliveTimeoutMs: e.TETHER_HTTP_KEEP_ALIVE_TIMEOUT,
      maxConnections: capacity.connections,
      maxKeepAliveConnections: capacity.keepAlive,
    },
    maxConnectionsPerIp: e.TETHER_MAX_CONNECTIONS_PER_IP,
    capacity,
  };
}

/** Where a Tether's routes and socket are: the config's, or a host's overrides (`createTether`'s options). */
export function routePaths(
  config: Pick<HttpConfig, "basePath" | "socketPath">,
  overrides: { basePath?: string; socketPath?: string },
): { basePath: string; socketPath: string } {
  const basePath = overrides.basePath?.replace(/\/+$/, "") ?? config.basePath;
  const socketPath =
    overrides.socketPath ?? (overrides.basePath !== undefined ? `${basePath}/socket.io/` : config.socketPath);
  return { basePath, socketPath };
}
