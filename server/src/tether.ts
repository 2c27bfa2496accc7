import type { Server as HttpServer, IncomingMessage } from "node:http";
import {
  type AppClientEventName,
  type AppClientPayload,
  type AppClientResult,
  ErrorCode,
  type RoomMember,
  RoomNameSchema,
  Route,
  type SchemaOutput,
  SessionEndReason,
  type StandardSchemaV1,
  type TetherEvents,
} from "@tether/shared";
import { Router } from "express";
import type { Logger } from "pino";
import { clientIpResolver } from "./auth/client-ip.js";
import { hostSessionId, sessionRoom } from "./auth/keys.js";
import { RateLimits } from "./auth/limits.js";
import { apiKeyLogin } from "./auth/login.js";
import { OriginPolicy } from "./auth/origins.js";
import { SharedSecrets } from "./auth/secrets.js";
import { AuthService, type HostSessionGrant, type LoginCheck } from "./auth/service.js";
import { ResumeTickets } from "./auth/tickets.js";
import { requireGivenSecrets, type TetherConfig } from "./config/config.js";
import { JobRunner } from "./demo/jobs.js";
import { jobRoutes } from "./demo/routes.js";
import { DEMO_DEFAULTS, type JobLimits } from "./demo/settings.js";
import { TetherError } from "./errors.js";
import { errorHandler } from "./http/errors.js";
import { publishRoutes } from "./http/publish.js";
import { authRoutes, underBasePath } from "./http/routes.js";
import { corsForAllowlist } from "./http/security.js";
import { HTTP_DEFAULTS } from "./http/settings.js";
import { type NodeHandler, tokenHandler } from "./http/token.js";
import { workerScriptRoute } from "./http/worker-script.js";
import { instrumentStore } from "./observability/instrument.js";
import { createLogger } from "./observability/logger.js";
import { Metrics } from "./observability/metrics.js";
import { drainSockets } from "./ops/drain.js";
import { healthRoutes, metricsRoutes } from "./ops/health.js";
import { RedisSafety } from "./ops/redis-safety.js";
import { type EventHandler, EventHandlers } from "./realtime/handlers.js";
import type { RoomsOf } from "./realtime/handshake.js";
import { type Publisher, type PublishPolicy, StreamPublisher } from "./realtime/publisher.js";
import type { RoomControl, RoomControlMessage } from "./realtime/room-control.js";
import type { CanJoin } from "./realtime/rooms.js";
import { createRealtime, type Realtime } from "./realtime/server.js";
import { REALTIME_DEFAULTS } from "./realtime/settings.js";
import type { TetherServer } from "./realtime/types.js";
import { createMemoryBackend } from "./store/memory.js";
import { createRedisBackend } from "./store/redis.js";
import type { Backend, HistoryLimits } from "./store/types.js";

export interface TetherOptions {
  config: TetherConfig;
  /**
   * Decides who logs in at `POST /api/auth/login`: return a user id, or null to
   * refuse with INVALID_CREDENTIALS. Default: the built-in API-key check.
   */
  login?: LoginCheck;
  /** The rooms with history a user's sockets join at connect. Default: none. */
  roomsOf?: RoomsOf;
  /**
   * Whether a user may join a room at run time (`client.join(room)`), checked again
   * on every reconnect for the rooms the client remembers. Rooms from `roomsOf` need
   * no check. Default: refuse every runtime join (rooms are private unless you say).
   */
  canJoin?: CanJoin;
  logger?: Logger;
  /**
   * The demo workload, `POST /api/jobs` (any signed-in user starts a job that publishes
   * to them). Off by default in a host app; `startServer` turns it on. `true` or
   * per-user limits (defaults `DEFAULTS.jobsPerUser` and `DEFAULTS.jobStepsPerUser`: 3 and 10,000).
   */
  demo?: boolean | Partial<JobLimits>;
  /** Prefix of the auth, jobs and publish routes, e.g. `/tether`. Default: `config.basePath`. */
  basePath?: string;
  /** The Socket.IO path. Default: `config.socketPath`, or `<basePath>/socket.io/` when `basePath` is given here. */
  socketPath?: string;
}

/**
 * A Tether instance, mounted on a host app's express app and HTTP server. `E`, the
 * app's event map (see `TetherEvents`), types `publisher.publish` and `handle`.
 */
export interface Tether<E extends TetherEvents = TetherEvents> {
  /**
   * Everything below in one router, for hosts that mount Tether whole:
   * `app.use(tether.router)` = auth + ops + publish + the demo when enabled.
   */
  readonly router: Router;
  /**
   * `POST <base>/api/auth/login`, `…/logout`, `GET …/session`, `POST …/ws-token`, and
   * `GET <base>/tether-worker.js` (the client's SharedWorker, which must be same-origin with the page).
   */
  readonly authRouter: Router;
  /**
   * `GET /healthz`, `/readyz`, `/metrics` (at the root, whatever the base path, for probes).
   * Mount it on an internal port instead of the public app if you like; `/metrics` needs
   * `Authorization: Bearer <TETHER_METRICS_KEY>` when that is set.
   */
  readonly opsRouter: Router;
  /** `POST <base>/api/publish` (answers nothing unless TETHER_PUBLISH_KEY is set). */
  readonly publishRouter: Router;
  /** `POST <base>/api/jobs`, with per-user limits; undefined unless the `demo` option is on. */
  readonly demoRouter: Router | undefined;
  /** The base path of the routes ("" or e.g. `/tether`), and the Socket.IO path: give both to clients. */
  readonly basePath: string;
  readonly socketPath: string;
  /** The login key (configured, or generated and shared through the store). */
  readonly apiKey: string;
  readonly apiKeyGenerated: boolean;
  readonly backend: Backend;
  readonly logger: Logger;
  /** Publishes events to a user's tabs or a room, on every instance, with history for recovery. */
  readonly publisher: Publisher<E>;
  /**
   * Handles a client → server event: every payload is validated by `schema` (any
   * Standard Schema: zod, valibot, …) before `handler` runs; an invalid one, an
   * unknown event or one past the socket's or session's rate limit is refused with
   * an `{ ok: false, error }` acknowledgement. The handler's return value is
   * acknowledged as `{ ok: true, result }`; a TetherError it throws reaches the
   * client with its code and message, anything else as INTERNAL. Throws for a
   * reserved or built-in name, or one already handled. Call it before or after `attach`.
   *
   * @example
   * tether.handle("chat:send", z.object({ text: z.string().max(500) }), async ({ text }, { userId }) => {
   *   const id = await messages.add(userId, text);
   *   return { id };
   * });
   */
  handle<K extends AppClientEventName<E>, S extends StandardSchemaV1<unknown, AppClientPayload<E, K>>>(
    event: K,
    schema: S,
    handler: EventHandler<SchemaOutput<S>, AppClientResult<E, K>>,
  ): void;
  /**
   * Who is in a room with history, across the fleet: users with their connection
   * counts. All of them unless `limit` is given (clients get at most 100).
   *
   * @example
   * const first = await tether.members("doc:42", { limit: 20 });
   */
  members(room: string, options?: { limit?: number }): Promise<RoomMember[]>;
  /**
   * Takes a user's sockets (`{ userId }`), or a host-issued session's (`{ sessionKey }`,
   * see `issueTokenFor`), out of a room on every instance, within a second: the room's
   * events stop, they leave its presence (`presence:leave` for a user's last connection),
   * `room:members` is refused to them, and they get `room:revoked {room}` (the SDK forgets
   * the room). They stay connected. Change what `canJoin` (or `roomsOf`) answers first,
   * or the client may join again. Resolves once this instance's sockets are out and the
   * others are told; rejects with UNAVAILABLE when Redis could not be reached (call again).
   *
   * @example
   * await acl.revoke(docId, userId);
   * await tether.removeFromRoom(`doc:${docId}`, { userId });
   */
  removeFromRoom(room: string, who: { userId: string } | { sessionKey: string }): Promise<void>;
  /**
   * Asks `canJoin` again (and `roomsOf`, for the rooms it granted) for every connected
   * socket in `room`, or in any room when `room` is omitted, on every instance, and
   * removes the sockets no longer allowed as `removeFromRoom` does. Call it after a
   * change of permissions you cannot pin on one user. A check that throws keeps the
   * room. Resolves once this instance is rechecked and the others are told (each
   * rechecks on receipt); rejects with UNAVAILABLE when Redis could not be reached.
   *
   * @example
   * await db.setChannelPrivate(channelId);
   * await tether.recheckRooms(`channel:${channelId}`);
   */
  recheckRooms(room?: string): Promise<void>;
  /** Starts Socket.IO on the host's HTTP server. Call once. */
  attach(server: HttpServer): TetherServer;
  /**
   * `POST /api/auth/ws-token` as a plain Node handler: a server may answer it
   * before its express app (see `isTokenRequest`), as `startServer` does.
   */
  readonly tokenRoute: NodeHandler;
  /**
   * Mints a WS token for a user the host app signed in itself (behind its own session
   * or JWT; no Tether cookie). Call it from the host's own authenticated route and send
   * the result to the client (the SDK's `getToken` option). The Tether session is keyed
   * by `sessionKey` (stored hashed), renewed while the user is connected, capped at
   * `expiresAt` and at `TETHER_SESSION_MAX_AGE` after the key's first grant (later grants
   * and reconnects never move that cap), and covered by liveness, limits and resume
   * tickets like a login session. The first grant binds the key to `userId`.
   * Rejects with a {@link TetherError}: ORIGIN_FORBIDDEN for a browser on another origin,
   * FORBIDDEN when the key is bound to another user (keys must be unique across users,
   * not per user: a per-user counter collides), SESSION_REQUIRED once `expiresAt` or the
   * max age has passed or the key was ended, RATE_LIMITED, UNAVAILABLE. Protect the route
   * against CSRF like the host's other routes.
   *
   * @example
   * app.get("/my/tether-token", requireUser, async (req, res) => {
   *   const { userId, sessionId, expiresAt } = req.user;
   *   res.set("Cache-Control", "no-store");
   *   res.json(await tether.issueTokenFor(req, { userId, sessionKey: sessionId, expiresAt }));
   * });
   */
  issueTokenFor(req: IncomingMessage, grant: HostSessionGrant): Promise<{ token: string; expiresAt: number }>;
  /**
   * Ends a host-issued session (see `issueTokenFor`): its sockets on every instance get
   * `session:ended` (reason `logout` by default) and disconnect, and no token is issued
   * for `sessionKey` again: the end is remembered at least `TETHER_SESSION_MAX_AGE`, and
   * at least until the latest `expiresAt` the key was granted with (at most a year ahead
   * of a grant), a later grant with a later `expiresAt` extending it. Call it from the
   * host's logout.
   */
  endSession(sessionKey: string, reason?: SessionEndReason): Promise<void>;
  /** The Socket.IO server, once attached. */
  readonly io: TetherServer | undefined;
  readonly draining: boolean;
  /**
   * What a load balancer's agent check should hear (HAProxy `agent-check`):
   * `drain` while draining, otherwise `up` and a weight that falls under load.
   */
  agentStatus(): string;
  /**
   * Starts a graceful stop: /readyz reports 503 and new handshakes are refused
   * (UNAVAILABLE, retryable) at once; connected clients are then moved to other
   * instances in jittered batches over `windowMs`. Running jobs get up to
   * `jobsGraceMs` more to finish.
   */
  drain(windowMs: number, jobsGraceMs?: number): Promise<void>;
  /** Drains at once if not drained yet, then closes Socket.IO and the store connections. */
  close(): Promise<void>;
}

/** History limits from config: the window, the length cap, and how long a stream's last id outlives it. */
export function historyLimits(config: TetherConfig): HistoryLimits {
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
export function publishPolicy(config: TetherConfig): PublishPolicy {
  return {
    deadlineMs: config.publish.deadlineMs,
    replicas: config.publish.replicas,
    replicaTimeoutMs: Math.max(1, Math.floor(config.redisCommandTimeoutMs / 2)),
  };
}

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
  requireGivenSecrets(config, { builtInLogin: options.login === undefined });
  const logger = options.logger ?? createLogger(config, { instance: config.instanceId });
  for (const warning of config.warnings) logger.warn(warning);
  const limits = historyLimits(config);
  const backend = config.redis
    ? await createRedisBackend(config.redis, config.redisCommandTimeoutMs, limits, logger)
    : createMemoryBackend(limits);
  let realtime: Realtime | undefined;
  const metrics = new Metrics(() => realtime?.io.engine.clientsCount ?? 0);
  const authStore = instrumentStore(backend.auth, "auth", metrics);
  const history = instrumentStore(backend.history, "history", metrics);
  const secrets = await SharedSecrets.resolve(authStore, {
    apiKey: config.apiKey,
    sessionSecrets: config.sessionSecrets,
  });
  // Persistence off or an evicting Redis loses what Tether stores: warn loudly, at start and after every reconnect.
  const redisSafety = backend.kind === "redis" ? new RedisSafety(backend.commands, metrics, logger) : undefined;
  await redisSafety?.check();
  redisSafety?.watch();
  // Generated secrets converge if Redis loses them (in-process stores cannot).
  if (backend.kind === "redis") secrets.watch(config.secretsCheckIntervalMs, logger, backend.commands);
  const auth = new AuthService({
    store: authStore,
    sessionClient: backend.sessionClient,
    sessionSecrets: secrets.sessionSecrets,
    sessionIdleTtlMs: config.sessionIdleTtlMs,
    sessionMaxAgeMs: config.sessionMaxAgeMs,
    wsTokenTtlMs: config.wsTokenTtlMs,
    tickets:
      config.resumeTicketTtlMs > 0 ? new ResumeTickets(secrets.sessionSecrets, config.resumeTicketTtlMs) : undefined,
    storeDeadlineMs: config.redisCommandTimeoutMs,
    limits: new RateLimits(config.limits, backend.kind === "redis" ? backend.commands : undefined, config.rateLimits),
    clientIp: clientIpResolver(config.trustProxy),
    trustProxy: config.trustProxy,
  });
  const origins = new OriginPolicy(
    config.allowedOrigins,
    config.trustProxy !== undefined && config.trustProxy !== false,
  );
  const publisher = new StreamPublisher(history, publishPolicy(config));
  const handlers = new EventHandlers(logger);
  const jobLimits = typeof options.demo === "object" ? options.demo : {};
  const jobs = new JobRunner(publisher, logger, { ...DEMO_DEFAULTS, ...jobLimits });
  const basePath = options.basePath?.replace(/\/+$/, "") ?? config.basePath;
  const socketPath =
    options.socketPath ?? (options.basePath !== undefined ? `${basePath}/socket.io/` : config.socketPath);
  let draining = false;
  const attached = () => {
    if (!realtime) throw new Error("Tether is not attached to an HTTP server yet: call tether.attach(server)");
    return realtime;
  };

  async function drain(windowMs: number, jobsGraceMs = 0): Promise<void> {
    draining = true;
    if (realtime) await drainSockets(realtime.io, windowMs, metrics, logger);
    // Running jobs publish through the store: they may finish after the clients have moved.
    await jobs.whenIdle(jobsGraceMs);
    jobs.stopAll();
  }

  /** A room instruction to every instance; before `attach`, to the others only (this one has no sockets). */
  async function sendRoomControl(control: RoomControl): Promise<void> {
    try {
      if (realtime) await realtime.roomControl(control);
      else await backend.control.publish({ roomControl: control, from: "" } satisfies RoomControlMessage);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, "room control not sent");
      throw new TetherError(ErrorCode.Unavailable, "Could not reach every instance; try again.");
    }
  }

  const tokenRoute = tokenHandler({ auth, origins, metrics, logger });
  const cors = corsForAllowlist(origins);
  const errors = errorHandler(logger);
  const authRouter = underBasePath(
    basePath,
    Router().use(
      authRoutes({
        auth,
        login: options.login ?? apiKeyLogin(() => secrets.apiKey),
        origins,
        maxBodyBytes: HTTP_DEFAULTS.maxBodyBytes,
        tokenRoute,
        onSessionEnded: (sid) => attached().endSession(sid, SessionEndReason.Logout),
        cors,
        errors,
      }),
      workerScriptRoute(),
    ),
  );
  // The same conditions as /readyz, for the tether_ready gauge (and the alert on it).
  metrics.measureReadiness(
    async () =>
      !draining &&
      (await backend.ping().then(
        () => true,
        () => false,
      )),
  );
  const opsRouter = Router();
  opsRouter.use(
    healthRoutes(
      backend,
      () => draining,
      () => (redisSafety ? { redisConfig: redisSafety.current } : {}),
    ),
  );
  opsRouter.use(metricsRoutes(metrics, config.metricsKey));
  opsRouter.use([Route.Health, Route.Ready, Route.Metrics], errors);
  const publishRouter = Router();
  if (cors) publishRouter.use(Route.Publish, cors);
  publishRouter.use(publishRoutes(config.publishKey, () => publisher, HTTP_DEFAULTS.maxBodyBytes));
  publishRouter.use(Route.Publish, errors);
  const demoRouter =
    options.demo === undefined || options.demo === false
      ? undefined
      : underBasePath(
          basePath,
          jobRoutes({
            auth,
            origins,
            maxBodyBytes: HTTP_DEFAULTS.maxBodyBytes,
            cors,
            errors,
            startJob: (userId, steps, intervalMs) => jobs.start(userId, steps, intervalMs),
            instanceId: config.instanceId,
          }),
        );
  const router = Router();
  router.use(opsRouter, authRouter, underBasePath(basePath, publishRouter));
  if (demoRouter) router.use(demoRouter);

  return {
    router,
    authRouter,
    opsRouter,
    publishRouter: underBasePath(basePath, publishRouter),
    demoRouter,
    basePath,
    socketPath,
    tokenRoute,
    get apiKey() {
      return secrets.apiKey;
    },
    apiKeyGenerated: secrets.apiKeyGenerated,
    backend,
    logger,
    publisher,
    get io() {
      return realtime?.io;
    },
    async issueTokenFor(req, grant) {
      if (!origins.allows(req)) throw new TetherError(ErrorCode.OriginForbidden);
      const minted = await auth.issueTokenFor(req, grant);
      metrics.tokens.inc({ result: "issued" });
      return minted;
    },
    async endSession(sessionKey, reason = SessionEndReason.Logout) {
      // As at logout: tell every instance first, so a liveness check in between does not say "revoked".
      const sid = hostSessionId(sessionKey);
      if (realtime) await realtime.endSession(sid, reason);
      await auth.endHostSession(sessionKey);
    },
    get draining() {
      return draining;
    },
    agentStatus() {
      if (draining) return "drain";
      return `up ${realtime?.admission.weight() ?? 100}%`;
    },
    drain,
    handle(event, schema, handler) {
      handlers.add(event, schema, handler);
    },
    async members(room, { limit } = {}) {
      // A read: it writes nothing (expired entries are left out; the heartbeat removes them).
      const read = await (realtime ? realtime.rooms.members(room, limit) : backend.presence.members(room, limit));
      return read.members;
    },
    async removeFromRoom(room, who) {
      if (!RoomNameSchema.safeParse(room).success) throw new TetherError(ErrorCode.InvalidInput, "Not a room name.");
      const control: RoomControl =
        "userId" in who
          ? { op: "remove", room, userId: who.userId }
          : { op: "remove", room, session: sessionRoom(hostSessionId(who.sessionKey)) };
      await sendRoomControl(control);
    },
    async recheckRooms(room) {
      if (room !== undefined && !RoomNameSchema.safeParse(room).success)
        throw new TetherError(ErrorCode.InvalidInput, "Not a room name.");
      await sendRoomControl(room === undefined ? { op: "recheck" } : { op: "recheck", room });
    },
    attach(server) {
      if (realtime) throw new Error("Tether is already attached");
      realtime = createRealtime(server, {
        instanceId: config.instanceId,
        path: socketPath,
        pingIntervalMs: config.pingIntervalMs,
        pingTimeoutMs: config.pingTimeoutMs,
        connectTimeoutMs: config.connectTimeoutMs,
        sessionCheckIntervalMs: config.sessionCheckIntervalMs,
        streamCheckIntervalMs: config.streamCheckIntervalMs,
        resumeTicketTtlMs: config.resumeTicketTtlMs,
        admission: config.admission,
        maxMessageBytes: REALTIME_DEFAULTS.maxSocketMessageBytes,
        socketLimits: config.socketLimits,
        origins,
        auth,
        backend,
        history,
        metrics,
        roomsOf: options.roomsOf ?? (() => []),
        handlers,
        canJoin: options.canJoin ?? (() => false),
        roomLimits: config.roomLimits,
        isDraining: () => draining,
        logger,
      });
      return realtime.io;
    },
    async close() {
      if (!draining) await drain(0);
      secrets.stop();
      redisSafety?.stop();
      if (realtime) {
        realtime.stop();
        await realtime.io.close();
      }
      await backend.close();
    },
  };
}
