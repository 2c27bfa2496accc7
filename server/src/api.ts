/** The public types of `createTether`: what a host gives it, and the instance it gets back. */
import type { Server as HttpServer, IncomingMessage } from "node:http";
import type {
  AppClientEventName,
  AppClientPayload,
  AppClientResult,
  RoomMember,
  SchemaOutput,
  SessionEndReason,
  StandardSchemaV1,
  TetherEvents,
} from "@tether/shared";
import type { RequestHandler, Router } from "express";
import type { Logger } from "pino";
import type { HostSessionGrant, LoginCheck } from "./auth/service.js";
import type { TetherConfig } from "./config/config.js";
import type { JobLimits } from "./demo/settings.js";
import type { GrantFor } from "./http/host-token.js";
import type { NodeHandler } from "./http/token.js";
import type { EventHandler } from "./realtime/handlers.js";
import type { RoomsOf } from "./realtime/handshake.js";
import type { HistoryOptions, HistoryPage } from "./realtime/history.js";
import type { ConnectionIdentity } from "./realtime/hooks.js";
import type { Publisher, Target } from "./realtime/publisher.js";
import type { CanJoin } from "./realtime/rooms.js";
import type { TetherServer, TetherSocket } from "./realtime/types.js";
import type { Backend } from "./store/types.js";

export interface TetherOptions {
  config: TetherConfig;
  /**
   * Decides who logs in at `POST /api/auth/login`: return a user id, or null to
   * refuse with INVALID_CREDENTIALS. Default: the built-in API-key check. `false`: no
   * login route at all (a host that signs its users in itself and hands them tokens with
   * `issueTokenFor`); then no `TETHER_API_KEY` is needed, in production either.
   */
  login?: LoginCheck | false;
  /**
   * Where Tether keeps its state. Default: Redis when `REDIS_URL` is set, else in this
   * process ("embedded": one instance only, every instance a separate server), with a
   * warning. `"memory"`: embedded on purpose, no warning; required for embedded mode under
   * `NODE_ENV=production`, where a missing `REDIS_URL` is otherwise refused at start.
   */
  store?: "memory";
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
   * Runs for every connected socket, after Tether's own listeners (the user's events, rooms
   * and history are set up): who it is and the Socket.IO socket (add listeners, join your own
   * Socket.IO rooms). A hook that throws or rejects is logged; the socket stays.
   *
   * @example
   * onConnect: ({ userId }) => metrics.online.inc({ user: userId }),
   */
  onConnect?: (identity: ConnectionIdentity, socket: TetherSocket) => void | Promise<void>;
  /** Runs when a connected socket goes, with Socket.IO's reason (`"transport close"`, `"client namespace disconnect"`, …). */
  onDisconnect?: (identity: ConnectionIdentity, reason: string) => void | Promise<void>;
  /**
   * The demo workload, `POST /api/jobs` (any signed-in user starts a job that publishes
   * to them). Off by default in a host app; `startServer` turns it on. `true` or
   * per-user limits (defaults `DEFAULTS.jobsPerUser` and `DEFAULTS.jobStepsPerUser`).
   */
  demo?: boolean | Partial<JobLimits>;
  /** Prefix of the auth, jobs and publish routes, e.g. `/tether`. Default: `config.basePath`. */
  basePath?: string;
  /** The Socket.IO path. Default: `config.socketPath`, or `<basePath>/socket.io/` when `basePath` is given here. */
  socketPath?: string;
  /**
   * The host's HTTP server: Tether attaches to it at once, as `tether.attach(server)` would
   * (then do not call `attach` again). Default: none, call `attach` yourself.
   */
  server?: HttpServer;
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
  /**
   * `POST <base>/api/publish` and `GET <base>/api/history?target=user:<id>|room:<name>&limit=&before=`
   * (answer nothing unless TETHER_PUBLISH_KEY is set; both need it as `Authorization: Bearer`).
   */
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
   * The last events of a user's stream or a room's, on any instance: at most `limit` (default 50, at
   * most `TETHER_HISTORY_MAX_EVENTS`, 100 by default), the newest ones or those before the offset
   * `before` (paging back), oldest first, each with its offset; at most `TETHER_REPLAY_BUFFER` bytes
   * of event names and data per page (one event at least). `offset` is where the stream stands now,
   * `more` says whether older events remain. Only what the recovery window and length cap kept is
   * there. Rejects with a TetherError: INVALID_INPUT for a bad target, limit or offset (or an offset
   * from an earlier history of the stream, lost since), UNAVAILABLE when the store cannot be reached.
   *
   * @example
   * const { events, more } = await tether.history({ room: "doc:42" }, { limit: 20 });
   * const older = await tether.history({ room: "doc:42" }, { limit: 20, before: events[0]?.offset });
   */
  history(target: Target, options?: HistoryOptions): Promise<HistoryPage>;
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
  /** Starts Socket.IO on the host's HTTP server. Call once (not at all with the `server` option). */
  attach(server: HttpServer): TetherServer;
  /**
   * `POST /api/auth/ws-token` as a plain Node handler: a server may answer it
   * before its express app (see `isTokenRequest`), as `startServer` does.
   */
  readonly tokenRoute: NodeHandler;
  /**
   * The host's own token route, ready made: an express handler that asks `grant` which host
   * session the request belongs to (return null or undefined to refuse: 401 SESSION_REQUIRED),
   * mints with {@link Tether.issueTokenFor}, and answers `{ token, expiresAt }` with
   * `Cache-Control: no-store`, or the typed error body of Tether's routes
   * (`{"error":{"code","message"}}`, never a stack trace): UNAVAILABLE when the store is
   * down, INTERNAL when `grant` throws, and each refusal of `issueTokenFor`. The client
   * fetches it with its `tokenUrl` option. Put the host's login check in front, and
   * protect it against CSRF like the host's other routes.
   *
   * @example
   * const grant = (req: Request) => ({ userId: req.user.id, sessionKey: req.sessionID });
   * app.post("/tether-token", requireUser, tether.tokenRouteFor(grant));
   * // in the page
   * const client = createTetherClient({ url, tokenUrl: "/tether-token" }).connect();
   */
  tokenRouteFor(grant: GrantFor): RequestHandler;
  /**
   * Mints a WS token for a user the host app signed in itself (behind its own session
   * or JWT; no Tether cookie). Call it from the host's own authenticated route and send
   * the result to the client (the SDK's `getToken` option; or use {@link Tether.tokenRouteFor}).
   * The Tether session is keyed by `sessionKey` (stored hashed), renewed while the user is
   * connected, capped at `expiresAt` (when given) and at `TETHER_SESSION_MAX_AGE` after the key's first grant (later grants
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
   * at least until the latest `expiresAt` the key was granted with (a grant without one
   * counts as the max age from that grant; at most a year ahead
   * of a grant), a later grant with a later `expiresAt` extending it. Call it from the
   * host's logout.
   */
  endSession(sessionKey: string, reason?: SessionEndReason): Promise<void>;
  /** The Socket.IO server, once attached. */
  readonly io: TetherServer | undefined;
  readonly draining: boolean;
  /**
   * What a load balancer's agent check should hear (HAProxy `agent-check`):
   * `drain` while draining, `up 0%` while full (at its socket or connection cap: new
   * users go elsewhere, connected ones stay), otherwise `up` and a weight that falls under load.
   */
  agentStatus(): string;
  /**
   * Opens the health port: `GET /healthz` and `/readyz` answered by a thread of its own, from
   * what the event loop last wrote (its heartbeat, draining, the last Redis ping), so that a
   * load balancer's check is answered at once however busy the loop is, and fails once the loop
   * has stopped for `stallMs`. `startServer` opens it from `TETHER_HEALTH_PORT`; a host that runs
   * Tether in its own server calls this. Port, host and stall default to `TETHER_HEALTH_PORT`,
   * `TETHER_AGENT_HOST` and `TETHER_HEALTH_STALL` (port 0: one the system picks). It stays open
   * through `drain` (its `/readyz` says 503 then) and closes with `close`.
   *
   * @example
   * const { port } = await tether.startHealthPort({ port: 9102 });
   * // HAProxy: option httpchk, http-check send meth GET uri /readyz, default-server port 9102
   */
  startHealthPort(options?: { port?: number; host?: string; stallMs?: number }): Promise<{ port: number }>;
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
