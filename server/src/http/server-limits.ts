import { createServer, type RequestListener, type Server, type ServerOptions } from "node:http";
import { DEFAULTS } from "@tether/shared";
import type { HttpLimits } from "../config/config.js";

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
      DEFAULTS.httpTimeoutCheckIntervalMs,
      Math.max(100, Math.floor(limits.headersTimeoutMs / 2)),
    ),
  };
}

/**
 * An HTTP server with Tether's timeouts and connection cap (`config.http`), as
 * `startServer` uses: for a host app that wants the same limits on its own server.
 * Connections beyond the cap are closed at once; upgraded WebSockets count towards it.
 *
 * @example
 * const server = createHttpServer(config.http, app);
 * tether.attach(server);
 * server.listen(3000);
 */
export function createHttpServer(limits: HttpLimits, listener: RequestListener): Server {
  const server = createServer(httpServerOptions(limits), listener);
  server.maxConnections = limits.maxConnections;
  return server;
}
