import type { Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import type { Tether, TetherOptions } from "./api.js";
import type { TetherConfig } from "./config/config.js";
import { demoRoutes } from "./demo/page.js";
import { notFound } from "./http/errors.js";
import { securityHeaders } from "./http/security.js";
import { createHttpServer } from "./http/server-limits.js";
import { tokenRequestMatcher } from "./http/token.js";
import { startAgent } from "./ops/agent.js";
import { createTether } from "./tether.js";

/** A standalone Tether: its own express app and HTTP server. */
export interface RunningServer {
  readonly tether: Tether;
  readonly http: HttpServer;
  /** e.g. `http://127.0.0.1:3000` */
  readonly url: string;
  /**
   * Graceful stop: not ready at once, clients moved elsewhere over the drain
   * window, in-flight HTTP finished, store closed.
   */
  close(): Promise<void>;
}

/** While shutting down, how often keep-alive connections that went idle are closed. */
const IDLE_SWEEP_MS = 50;

/** Starts Tether as a service, as `npm start` does: demo page, contract routes, JSON 404s. */
export async function startServer(
  config: TetherConfig,
  options: Omit<TetherOptions, "config"> = {},
): Promise<RunningServer> {
  // The standalone server serves the demo (the page and POST /api/jobs), as the contract lists.
  const tether = await createTether({ demo: true, ...options, config });
  const app = express();
  app.disable("x-powered-by");
  app.use(securityHeaders());
  if (config.trustProxy !== undefined) app.set("trust proxy", config.trustProxy);
  app.use(tether.router);
  app.use(tether.basePath || "/", demoRoutes({ store: tether.backend.kind, apiKeyGenerated: tether.apiKeyGenerated }));
  app.use(notFound);

  // The token request runs on every reconnect: answered before express's routing.
  const isToken = tokenRequestMatcher(tether.basePath);
  // Timeouts and connection limits set deliberately (slowloris, one address filling the cap;
  // see deploy/haproxy.cfg for the proxy's side). The gate runs before Engine.IO's listeners.
  const http = createHttpServer(
    config.http,
    (req, res) => (isToken(req) ? tether.tokenRoute(req, res) : app(req, res)),
    { maxConnectionsPerIp: config.maxConnectionsPerIp, trustProxy: config.trustProxy, logger: tether.logger },
  );
  // A socket that never sends CONNECT is closed after this, not Socket.IO's 45 s.
  tether.attach(http);
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(config.port, config.host, () => resolve());
  });
  // The load balancer's ports. One that cannot open stops the start, and what was started is closed.
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  try {
    if (config.agentPort !== undefined)
      agent = await startAgent(config.agentPort, config.agentHost, () => tether.agentStatus());
    // Its checks answered off the event loop: a storm of reconnects must not fail them. Closed by tether.close().
    if (config.healthPort !== undefined) await tether.startHealthPort();
  } catch (err) {
    agent?.close();
    await new Promise<void>((resolve) => http.close(() => resolve()));
    await tether.close();
    throw err;
  }
  const { port } = http.address() as AddressInfo;
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  return {
    tether,
    http,
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    close: async () => {
      // Keep answering HTTP while draining: the load balancer must see /readyz turn 503.
      // Whatever time the deadline leaves after the drain (and a second to close) goes to running jobs.
      await tether.drain(config.drainWindowMs, Math.max(0, config.shutdownTimeoutMs - config.drainWindowMs - 1_000));
      // Then stop taking connections; requests in flight finish, and every keep-alive
      // connection is closed as soon as it is idle (not after its keep-alive timeout,
      // which may be longer than the shutdown deadline).
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      const closeIdle = setInterval(() => http.closeIdleConnections(), IDLE_SWEEP_MS);
      http.closeIdleConnections();
      try {
        await tether.close();
        await closed;
      } finally {
        clearInterval(closeIdle);
        agent?.close();
      }
    },
  };
}
