import { createServer, type RequestListener, type Server, type ServerOptions } from "node:http";
import type { Logger } from "pino";
import type { TrustProxy } from "../auth/client-ip.js";
import { gateConnections } from "./connection-gate.js";
import { HTTP_DEFAULTS, type HttpLimits } from "./settings.js";

/**
 * Node's HTTP server options for Tether's limits: time to send the headers and the
 * whole request, the idle keep-alive timeout, and how often connections past them are
 * looked for (Node's 30 s default would let a slowloris connection live 30 s longer).
 */
export function httpServerOptions(limits: HttpLimits): ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(
      HTTP_DEFAULTS.httpTimeoutCheckIntervalMs,
      Math.max(100, Math.floor(limits.headersTimeoutMs / 2)),
    ),
  };
}

/** The connection gate's settings besides `HttpLimits` (see `gateConnections`). */
export interface HttpServerGateOptions {
  /** Open connections per client address (`config.maxConnectionsPerIp`; 0: none); unset: 500. */
  maxConnectionsPerIp?: number;
  /** `config.trustProxy`: behind a proxy without it, every client counts as the proxy's address. */
  trustProxy?: TrustProxy;
  /** Gets one line when the instance is full. */
  logger?: Logger;
}

/**
 * An HTTP server with Tether's timeouts and connection limits (`config.http`), as
 * `startServer` uses: for a host app that wants the same limits on its own server.
 * Past the cap (`TETHER_HTTP_MAX_CONNECTIONS`), past the keep-alive cap for plain HTTP
 * (`TETHER_HTTP_MAX_KEEP_ALIVE_CONNECTIONS`), or past the per-address limit, requests
 * get 503 + `Retry-After` and upgrades a 503, while probes are still answered; upgraded
 * WebSockets count towards both. See `gateConnections`.
 *
 * @example
 * const server = createHttpServer(config.http, app, {
 *   maxConnectionsPerIp: config.maxConnectionsPerIp,
 *   trustProxy: config.trustProxy,
 * });
 * tether.attach(server);
 * server.listen(3000);
 */
export function createHttpServer(
  limits: HttpLimits,
  listener: RequestListener,
  options: HttpServerGateOptions = {},
): Server {
  const server = createServer(httpServerOptions(limits), listener);
  gateConnections(server, {
    ...options,
    maxConnections: limits.maxConnections,
    ...(limits.maxKeepAliveConnections !== undefined
      ? { maxKeepAliveConnections: limits.maxKeepAliveConnections }
      : {}),
    maxConnectionsPerIp: options.maxConnectionsPerIp ?? HTTP_DEFAULTS.maxConnectionsPerIp,
  });
  return server;
}
