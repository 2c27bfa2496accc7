import type { Server as HttpServer } from "node:http";
import { DEFAULTS, SessionEndReason } from "@tether/shared";
import { Router } from "express";
import type { Logger } from "pino";
import { apiKeyLogin } from "./auth/login.js";
import { OriginPolicy } from "./auth/origins.js";
import { resolveSecrets } from "./auth/secrets.js";
import { AuthService, type LoginCheck } from "./auth/service.js";
import type { TetherConfig } from "./config/config.js";
import { errorHandler } from "./http/errors.js";
import { authRoutes } from "./http/routes.js";
import { healthRoutes } from "./ops/health.js";
import { createLogger } from "./ops/logger.js";
import { JobRunner } from "./realtime/jobs.js";
import { LivePublisher, type Publisher } from "./realtime/publisher.js";
import { createRealtime, type Realtime } from "./realtime/server.js";
import type { TetherServer } from "./realtime/types.js";
import { createMemoryBackend } from "./store/memory.js";
import { createRedisBackend } from "./store/redis.js";
import type { Backend } from "./store/types.js";

export interface TetherOptions {
  config: TetherConfig;
  /**
   * Decides who logs in at `POST /api/auth/login`: return a user id, or null to
   * refuse with INVALID_CREDENTIALS. Default: the built-in API-key check.
   */
  login?: LoginCheck;
  logger?: Logger;
}

/** A Tether instance, mounted on a host app's express app and HTTP server. */
export interface Tether {
  /** The contract's routes (auth, jobs, health): `app.use(tether.router)`. */
  readonly router: Router;
  /** The login key (configured, or generated and shared through the store). */
  readonly apiKey: string;
  readonly apiKeyGenerated: boolean;
  readonly backend: Backend;
  readonly logger: Logger;
  /** Starts Socket.IO on the host's HTTP server. Call once. */
  attach(server: HttpServer): TetherServer;
  /** The Socket.IO server, once attached. */
  readonly io: TetherServer | undefined;
  /** Publishes events to a user's tabs or a room, on every instance. */
  readonly publisher: Publisher;
  readonly draining: boolean;
  /** Disconnects this instance's sockets and closes the store connections. */
  close(): Promise<void>;
}

/**
 * Creates Tether: connects the store, resolves the shared secrets and builds the routes.
 *
 * @example
 * const tether = await createTether({ config: loadConfig(), login: (req) => myUsers.check(req) });
 * app.use(tether.router);
 * const server = app.listen(3000);
 * tether.attach(server);
 */
export async function createTether(options: TetherOptions): Promise<Tether> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.logLevel, { instance: config.instanceId });
  const backend = config.redisUrl
    ? await createRedisBackend(config.redisUrl, config.redisCommandTimeoutMs, logger)
    : createMemoryBackend();
  const secrets = await resolveSecrets(backend.auth, { apiKey: config.apiKey, sessionSecrets: config.sessionSecrets });
  const auth = new AuthService({
    store: backend.auth,
    sessionClient: backend.sessionClient,
    sessionSecrets: secrets.sessionSecrets,
    sessionIdleTtlMs: config.sessionIdleTtlMs,
    sessionMaxAgeMs: config.sessionMaxAgeMs,
    wsTokenTtlMs: config.wsTokenTtlMs,
  });
  const origins = new OriginPolicy(
    config.allowedOrigins,
    config.trustProxy !== undefined && config.trustProxy !== false,
  );

  let realtime: Realtime | undefined;
  let publisher: Publisher | undefined;
  let jobs: JobRunner | undefined;
  let draining = false;
  const attached = () => {
    if (!realtime || !jobs) throw new Error("Tether is not attached to an HTTP server yet: call tether.attach(server)");
    return { realtime, jobs };
  };

  const router = Router();
  router.use(healthRoutes(backend, () => draining));
  router.use(
    authRoutes({
      auth,
      login: options.login ?? apiKeyLogin(secrets.apiKey),
      origins,
      maxBodyBytes: DEFAULTS.maxBodyBytes,
      onSessionEnded: (sid) => attached().realtime.endSession(sid, SessionEndReason.Logout),
      startJob: (userId, steps, intervalMs) => attached().jobs.start(userId, steps, intervalMs),
    }),
  );
  router.use(errorHandler(logger));

  return {
    router,
    apiKey: secrets.apiKey,
    apiKeyGenerated: secrets.apiKeyGenerated,
    backend,
    logger,
    get io() {
      return realtime?.io;
    },
    get publisher() {
      if (!publisher) throw new Error("Tether is not attached to an HTTP server yet: call tether.attach(server)");
      return publisher;
    },
    get draining() {
      return draining;
    },
    attach(server) {
      if (realtime) throw new Error("Tether is already attached");
      realtime = createRealtime(server, {
        instanceId: config.instanceId,
        pingIntervalMs: config.pingIntervalMs,
        pingTimeoutMs: config.pingTimeoutMs,
        sessionCheckIntervalMs: config.sessionCheckIntervalMs,
        maxMessageBytes: DEFAULTS.maxSocketMessageBytes,
        origins,
        auth,
        backend,
        logger,
        currentOffset: (userId) => live.currentOffset({ user: userId }),
      });
      const live = new LivePublisher(realtime.io);
      publisher = live;
      jobs = new JobRunner(live, logger);
      return realtime.io;
    },
    async close() {
      draining = true;
      jobs?.stopAll();
      if (realtime) {
        realtime.liveness.stop();
        realtime.io.local.disconnectSockets(true);
        await realtime.io.close();
      }
      await backend.close();
    },
  };
}
