import { z } from "zod";
import { count, countOrOff, duration, type EnvOf, optionalKey, urlPath } from "../env/values.js";

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
  /** Open connections (WebSockets included) one instance accepts; more are closed at once. */
  httpMaxConnections: 10_000,
  /** Open connections per client address. Generous: behind a proxy without TETHER_TRUST_PROXY every client shares the proxy's address. */
  maxConnectionsPerIp: 500,
} as const;

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
  TETHER_HTTP_MAX_CONNECTIONS: count(1, 10_000_000, HTTP_DEFAULTS.httpMaxConnections),
  /** Open connections (HTTP keep-alive and WebSocket) per client address; `off`: no limit. */
  TETHER_MAX_CONNECTIONS_PER_IP: countOrOff(HTTP_DEFAULTS.maxConnectionsPerIp),
};

/** The HTTP server's timeouts and connection cap. */
export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
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
}

export function httpConfig(e: EnvOf<typeof httpEnv>): HttpConfig {
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
      maxConnections: e.TETHER_HTTP_MAX_CONNECTIONS,
    },
    maxConnectionsPerIp: e.TETHER_MAX_CONNECTIONS_PER_IP,
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
