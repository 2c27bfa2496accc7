import { SessionEndReason, type TetherEvents } from "@tether/shared";
import { Router } from "express";
import type { Tether, TetherOptions } from "./api.js";
import { createAuth } from "./auth/create.js";
import { apiKeyLogin } from "./auth/login.js";
import { requireGivenSecrets, requireStoreChoice } from "./config/config.js";
import { createDemo } from "./demo/create.js";
import { createHttpRoutes } from "./http/create.js";
import { hostTokenRoute } from "./http/host-token.js";
import { routePaths } from "./http/settings.js";
import { instrumentStore } from "./observability/instrument.js";
import { createLogger } from "./observability/logger.js";
import { Metrics } from "./observability/metrics.js";
import { createOps } from "./ops/create.js";
import { type ProbePort, startProbePort } from "./ops/probe-port.js";
import { EventHandlers } from "./realtime/handlers.js";
import { readHistory, streamOf } from "./realtime/history.js";
import { hostRooms } from "./realtime/host-rooms.js";
import { hostSessions } from "./realtime/host-sessions.js";
import { StreamPublisher } from "./realtime/publisher.js";
import { createRealtime, type Realtime, requireAttached } from "./realtime/server.js";
import { historyLimits, publishPolicy } from "./realtime/settings.js";
import { createBackend } from "./store/backend.js";

/**
 * Creates Tether: connects the store, resolves the shared secrets and builds the routes.
 *
 * @example
 * const tether = await createTether({ config: loadConfig(), login: (req) => myUsers.check(req) });
 * app.use(securityHeaders());   // optional: helmet with Tether's CSP
 * app.use(tether.authRouter);   // or tether.router: auth + ops + publish (+ demo)
 * internalApp.use(tether.opsRouter);
 * const server = app.listen(3000);
 * tether.attach(server);
 */
export async function createTether<E extends TetherEvents = TetherEvents>(options: TetherOptions): Promise<Tether<E>> {
  const { config } = options;
  const memoryStore = options.store === "memory";
  requireGivenSecrets(config, { builtInLogin: options.login === undefined });
  requireStoreChoice(config, { memoryStore });
  const logger = options.logger ?? createLogger(config, { instance: config.instanceId });
  for (const warning of config.warnings) logger.warn(warning);
  if (config.redis === undefined && !memoryStore)
    logger.warn(
      'No REDIS_URL: Tether runs embedded, in this process (one instance only). Set REDIS_URL, or pass store: "memory" to say so.',
    );
  const { capacity } = config;
  logger.info(
    { sockets: capacity.sockets, connections: capacity.connections, keepAlive: capacity.keepAlive },
    `capacity: ${capacity.reason}`,
  );
  if (capacity.warning) logger.warn(capacity.warning);
  const { basePath, socketPath } = routePaths(config, options);
  const backend = await createBackend({ logger }, { ...config, history: historyLimits(config) });
  // The realtime half exists once `attach` is called: the parts built before it reach it through `attached`.
  let realtime: Realtime | undefined;
  let probes: ProbePort | undefined;
  const attached = () => realtime;
  const metrics = new Metrics(() => realtime?.io.engine.clientsCount ?? 0);
  const history = instrumentStore(backend.history, "history", metrics);
  const auth = await createAuth({ backend, metrics, logger }, config);
  const publisher = new StreamPublisher(history, publishPolicy(config), () => realtime?.ephemeral);
  const handlers = new EventHandlers(logger);
  const readTargetHistory: Tether<E>["history"] = async (target, historyOptions = {}) =>
    readHistory(history, streamOf(target), historyOptions, config.history);
  const http = createHttpRoutes(
    {
      auth,
      login: options.login === false ? undefined : (options.login ?? apiKeyLogin(() => auth.secrets.apiKey)),
      publisher,
      readHistory: readTargetHistory,
      metrics,
      logger,
      onSessionEnded: (sid) => requireAttached(realtime).endSession(sid, SessionEndReason.Logout),
    },
    { ...config, basePath },
  );
  const demo = options.demo
    ? createDemo(
        { auth, publisher, http, logger },
        { basePath, instanceId: config.instanceId, limits: options.demo === true ? {} : options.demo },
      )
    : undefined;
  const finishWork = async (graceMs: number) => demo?.finish(graceMs);
  const ops = await createOps(
    { backend, metrics, logger, errors: http.errors, realtime: attached, finishWork },
    config,
  );
  const router = Router().use(ops.router, http.authRouter, http.publishRouter);
  if (demo) router.use(demo.router);
  const { roomsOf, canJoin } = options;
  const realtimeDeps = { auth: auth.service, origins: auth.origins, backend, history, metrics, handlers, logger };
  const sessions = hostSessions({ auth: auth.service, origins: auth.origins, metrics, realtime: attached });

  const tether: Tether<E> = {
    router,
    authRouter: http.authRouter,
    opsRouter: ops.router,
    publishRouter: http.publishRouter,
    demoRouter: demo?.router,
    basePath,
    socketPath,
    tokenRoute: http.tokenRoute,
    get apiKey() {
      return auth.secrets.apiKey;
    },
    apiKeyGenerated: auth.secrets.apiKeyGenerated,
    backend,
    logger,
    publisher,
    history: readTargetHistory,
    get io() {
      return realtime?.io;
    },
    ...sessions,
    tokenRouteFor: (grant) => hostTokenRoute(sessions.issueTokenFor, logger, grant),
    ...hostRooms({ backend, logger, realtime: attached }),
    get draining() {
      return ops.draining;
    },
    agentStatus: () => ops.agentStatus(),
    async startHealthPort(opened = {}) {
      if (probes) throw new Error("Tether's health port is already open");
      const port = opened.port ?? config.healthPort;
      if (port === undefined) throw new TypeError("startHealthPort: no port (pass one, or set TETHER_HEALTH_PORT)");
      probes = await startProbePort({
        port,
        host: opened.host ?? config.agentHost,
        stallMs: opened.stallMs ?? config.healthStallMs,
        backend,
        isDraining: () => ops.draining,
        logger,
      });
      return { port: probes.port };
    },
    drain(windowMs, jobsGraceMs) {
      const drained = ops.drain(windowMs, jobsGraceMs);
      // Draining from here on: the health port's /readyz says so now, not at its next heartbeat.
      probes?.refresh();
      return drained;
    },
    handle(event, schema, handler) {
      handlers.add(event, schema, handler);
    },
    attach(server) {
      if (realtime) throw new Error("Tether is already attached");
      const isDraining = () => ops.draining;
      const hooks = { onConnect: options.onConnect, onDisconnect: options.onDisconnect };
      realtime = createRealtime(
        server,
        { ...realtimeDeps, roomsOf, canJoin, isDraining, hooks },
        { ...config, socketPath },
      );
      return realtime.io;
    },
    async close() {
      await ops.close();
      auth.secrets.stop();
      if (realtime) {
        realtime.stop();
        await realtime.io.close();
      }
      await backend.close();
      await probes?.close();
      probes = undefined;
    },
  };
  if (options.server) tether.attach(options.server);
  return tether;
}
