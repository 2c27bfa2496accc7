import type {
  AppClientEventName,
  AppClientPayload,
  AppClientResult,
  AppEventPayload,
  AppServerEventName,
  AppServerEventPayload,
  ClientToServerEvents,
  LoginResponse,
  Offset,
  PresenceData,
  RecoveryPayload,
  RoomMember,
  ServerToClientEvents,
  SessionResponse,
  TetherEvents,
} from "@tether/shared";
import type { ManagerOptions, Socket, SocketOptions } from "socket.io-client";
import type { FetchLike } from "./cookies.js";
import type { TetherClientError } from "./errors.js";
import type { LoginCredentials } from "./http.js";
import type { ClientLogger, LogLevel } from "./logger.js";
import type { ClientStats } from "./stats.js";

/**
 * Connection state.
 * - `"closed"`: idle. Before `connect()`, after `disconnect()`/`close()`/`logout()`,
 *   or after the server refused this origin (ORIGIN_FORBIDDEN).
 * - `"connecting"`: the first connection of a `connect()` is being established (and retried).
 * - `"connected"`: the socket is up and authenticated.
 * - `"reconnecting"`: a connection was lost; retrying with backoff.
 * - `"unauthenticated"`: the server said the login session is gone (`session:ended`,
 *   SESSION_REQUIRED, SESSION_EXPIRED). Not retried: log in, then `connect()` again.
 */
export type TetherState = "connecting" | "connected" | "reconnecting" | "unauthenticated" | "closed";

/** The underlying socket.io-client socket, typed with the protocol's events. */
export type TetherSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** Removes the listener (or subscription) it was returned for; calling it again does nothing. */
export type Unsubscribe = () => void;

/** Events of the client itself. */
export interface ClientOwnEvents {
  /** Every state change. */
  state: (state: TetherState) => void;
  /** Every failed attempt or lost connection, for logging. Non-fatal: watch `state` for outcomes. */
  error: (error: TetherClientError) => void;
}

/**
 * Listeners of the app's own server → client events: the published data with its
 * `offset` (and `room`). An untyped map adds none (use `client.socket` or a map).
 */
export type AppListeners<E extends TetherEvents> = {
  [K in AppServerEventName<E> as string extends K ? never : K]: (payload: AppServerEventPayload<E, K>) => void;
};

/** Everything `client.on()` accepts: the client's own events, the server's typed events and the app's. */
export type TetherClientEvents<E extends TetherEvents = TetherEvents> = ClientOwnEvents &
  ServerToClientEvents &
  AppListeners<E>;

/** Every event `emitWithAck` takes: the built-in `echo` and the app's client → server events. */
export type EmittableEvent<E extends TetherEvents> = keyof ClientToServerEvents | AppClientEventName<E>;
/** Arguments of an emittable event: `echo`'s, or the app event's one payload. */
export type EmittableArgs<E extends TetherEvents, K extends EmittableEvent<E>> = K extends keyof ClientToServerEvents
  ? EmitArgs<K>
  : K extends AppClientEventName<E>
    ? [payload: AppClientPayload<E, K>]
    : never;
/** What `emitWithAck` resolves with: `echo`'s payload, or the app handler's result. */
export type EmittableResult<E extends TetherEvents, K extends EmittableEvent<E>> = K extends keyof ClientToServerEvents
  ? AckResult<K>
  : K extends AppClientEventName<E>
    ? AppClientResult<E, K>
    : never;

type EmitParams<E extends keyof ClientToServerEvents> = Parameters<ClientToServerEvents[E]>;
/** Arguments of a client → server event, without its acknowledgement callback. */
export type EmitArgs<E extends keyof ClientToServerEvents> =
  EmitParams<E> extends [...infer Args, (...result: never[]) => void] ? Args : never;
/** What the server acknowledges a client → server event with. */
export type AckResult<E extends keyof ClientToServerEvents> =
  EmitParams<E> extends [...unknown[], (result: infer R) => void] ? R : never;

/** socket.io-client options that may be passed through; the client owns `auth`, `autoConnect` and `reconnection`. */
export type PassThroughSocketOptions = Omit<
  Partial<ManagerOptions & SocketOptions>,
  "auth" | "autoConnect" | "reconnection"
>;

export interface TetherClientOptions {
  /**
   * The server's origin, e.g. `http://127.0.0.1:3000`. In a browser defaults to
   * `location.origin`; required elsewhere. A path, if any, is ignored: give it as `basePath`.
   */
  url?: string;
  /**
   * The server's base path (its `TETHER_BASE_PATH`), e.g. `/tether`: the routes are
   * `<basePath>/api/auth/…` and the socket path `<basePath>/socket.io/` (override the
   * latter with `socketOptions.path`, as for a server with its own `TETHER_SOCKET_PATH`).
   * Default `""`: the root.
   */
  basePath?: string;
  /**
   * A custom fetch for the HTTP routes. Default: the global fetch; outside a browser
   * the Node entry point wraps it with a cookie jar of this client's own (fetch-cookie +
   * tough-cookie). The browser entry (export conditions `browser` and `default`) has no
   * jar: elsewhere than a browser, give it a fetch that keeps the session cookie.
   */
  fetch?: FetchLike;
  /** Socket.IO transports, in order of preference. Default `["websocket", "polling"]`. */
  transports?: NonNullable<ManagerOptions["transports"]>;
  /**
   * First reconnect delay (before jitter), doubling per failed attempt. A refusal that carries the
   * server's `retryAfterMs` (or a `Retry-After`) waits that instead. Default `CLIENT_DEFAULTS.reconnectBaseDelayMs`.
   */
  reconnectBaseDelayMs?: number;
  /** Cap of the reconnect delay (before jitter). Default `CLIENT_DEFAULTS.reconnectMaxDelayMs` (30 s). */
  reconnectMaxDelayMs?: number;
  /** Timeout of each HTTP request (token, login, logout, session). Default `CLIENT_DEFAULTS.tokenRequestTimeoutMs`. */
  tokenRequestTimeoutMs?: number;
  /**
   * Reconnect with the resume ticket the server pushes (no HTTP request), and
   * fetch a WS token only when there is none or it was refused. Default true.
   */
  resumeTickets?: boolean;
  /**
   * A connect that has no resume ticket is signed in by the session cookie the browser
   * sends with the handshake (`auth.cookie`), with no token request before it: one HTTP
   * request less per first connect. If the server finds no usable cookie (another site,
   * a session that is gone) it refuses with `TOKEN_INVALID` and the client fetches a token
   * at once, and for the rest of this connection's life. Default true in a browser or a
   * SharedWorker when neither `getToken`, `tokenUrl` nor `fetch` is given (they keep the
   * credential elsewhere); false elsewhere (socket.io-client in Node sends no cookies).
   */
  cookieHandshake?: boolean;
  /**
   * Where the connection gets its WS token instead of `POST /api/auth/ws-token`: for a
   * host app that mints tokens from its own route (`tether.issueTokenFor`), behind its
   * own session or JWT, with no Tether login. Called before every connect and reconnect
   * that has no resume ticket (in a tab, also when a SharedWorker holds the socket). Throw
   * an {@link UnauthorizedError} (or any error whose `status` is 401) when the host's
   * session is gone: the client stops reconnecting and the state becomes
   * `"unauthenticated"`; any other rejection is retried with backoff.
   *
   * @example
   * getToken: async () => {
   *   const res = await fetch("/my/tether-token", { headers: { authorization: `Bearer ${jwt}` } });
   *   if (res.status === 401) throw new UnauthorizedError();
   *   if (!res.ok) throw new Error(`token route: ${res.status}`);
   *   return res.json();
   * }
   */
  getToken?: () => Promise<{ token: string; expiresAt?: number }>;
  /**
   * The host's token route (e.g. `tether.tokenRouteFor` mounted at `/tether-token`), instead of
   * `POST /api/auth/ws-token`: the client POSTs to it, with the page's cookies, before every
   * connect and reconnect that has no resume ticket, and reads `{ token, expiresAt? }`. Relative
   * to the page in a browser (else to `url`). As for Tether's own route: the same timeout
   * (`tokenRequestTimeoutMs`); a 401 or 403 (the host's session is gone) stops reconnecting, state
   * `"unauthenticated"`; network failures, 5xx and 429 are retried with backoff. A SharedWorker
   * fetches it itself (same origin as the page). Not with `getToken` (a TypeError at creation).
   *
   * @example
   * const client = createTetherClient({ url, tokenUrl: "/tether-token" }).connect();
   */
  tokenUrl?: string | URL;
  /** Timeout of `emitWithAck`/`echo`. Default 10 s. */
  ackTimeoutMs?: number;
  /**
   * When timers stall longer than this (machine asleep, tab frozen), a connection that
   * looks open is replaced at once. Default 45 s (the server's pingInterval + pingTimeout
   * defaults). `0` disables the check.
   */
  staleAfterMs?: number;
  /** Extra socket.io-client options, passed through (e.g. `extraHeaders`, `timeout`, `forceNew`). */
  socketOptions?: PassThroughSocketOptions;
  /** Uniform random in [0, 1) for the backoff jitter; for tests. Default `Math.random`. */
  random?: () => number;
  /**
   * When the page wakes up (`online`, visible again, `pageshow`), a connected client
   * pings the server and replaces the socket if no answer comes within this time.
   * Default 3 s.
   */
  wakeCheckTimeoutMs?: number;
  /**
   * In a browser, share one connection among all tabs of the origin: `"auto"`
   * (default) uses the SharedWorker at `sharedWorkerUrl` when given and the browser
   * has SharedWorker, else elects a leader tab whose socket serves the others (Web
   * Locks + BroadcastChannel; needs a secure context such as HTTPS or 127.0.0.1),
   * else gives each tab its own socket. `"tab"`: always a socket per tab. Ignored
   * outside a browser. See {@link ClientStats.mode} for what was chosen.
   */
  share?: "auto" | "tab";
  /**
   * URL of the SDK's SharedWorker script (`@tether/client/worker`, shipped as
   * `dist/tether-worker.js`; the Tether server serves it at `<basePath>/tether-worker.js`),
   * same-origin with the page. Without it, sharing elects a leader tab instead.
   * With `fetch` or `getToken` too (functions cannot reach a worker): the worker asks an
   * attached tab for each token, and the tab runs them. With `tokenUrl` alone, the worker
   * fetches it itself.
   */
  sharedWorkerUrl?: string | URL;
  /**
   * Keep each stream's last offset in the tab's `sessionStorage`, so that events
   * published while the page reloads are replayed after it. Default true in a browser.
   */
  persistOffsets?: boolean;
  /**
   * Where the client logs its state changes, reconnect attempts and refusals (e.g.
   * `console`). Default: none, the client logs nothing.
   */
  logger?: ClientLogger;
  /** The lowest level written to `logger`. Default `"info"` (`"debug"` adds each event received). */
  logLevel?: LogLevel;
}

/**
 * A Tether connection: HTTP login plus a Socket.IO connection that re-authenticates on
 * every (re)connect. `E`, the app's event map (`TetherEvents`), types `on` and `emit`.
 */
export interface TetherClient<E extends TetherEvents = TetherEvents> {
  /** The current connection state. */
  readonly state: TetherState;
  /**
   * The latest event offset seen (any payload with an `offset`, or `welcome`'s on a
   * first connect); sent as `auth.offset` on every reconnect so missed events are replayed.
   */
  readonly lastOffset: Offset | undefined;
  /** The latest offset seen per room with history; sent as `auth.rooms` on every reconnect. */
  readonly roomOffsets: Readonly<Record<string, Offset>>;
  /**
   * The underlying socket, for advanced use. Do not call its `connect`/`disconnect`.
   * A tab that shares another's connection (`stats().mode` `"worker"` or `"follower"`)
   * has none: reading it throws SHARED_CONNECTION. To listen to any event, use
   * `client.on(name, …)` or `client.onAny(…)`, which work in every tab.
   */
  readonly socket: TetherSocket;

  /**
   * Reliability figures of the connection: reconnects and how long they took, replay
   * sizes, recovery outcomes, the pending retry, and how this tab shares the socket.
   */
  stats(): ClientStats;

  /**
   * `POST /api/auth/login`. Does not connect: call `connect()` after it. A string is
   * the built-in check's API key (`{"apiKey"}`); an object is sent as the JSON body,
   * for a host's own login check (e.g. `{ username, password }`).
   */
  login(credentials: LoginCredentials): Promise<LoginResponse>;
  /** Closes the connection (state `"closed"`), then `POST /api/auth/logout`. */
  logout(): Promise<void>;
  /** `GET /api/auth/session`; rejects with SESSION_REQUIRED when not logged in. */
  session(): Promise<SessionResponse>;

  /**
   * Opens the connection and keeps it open until `disconnect()`/`close()` or the session ends.
   * Returns the client, so that it can be made and connected in one expression.
   *
   * @example
   * const client = createTetherClient({ url, tokenUrl: "/tether-token" }).connect();
   */
  connect(): this;
  /** Closes the connection and stops retrying; state `"closed"`. The login session is untouched. */
  disconnect(): void;
  /** Alias of `disconnect()`. */
  close(): void;
  /** While waiting to retry, retries now. No-op when connected, closed, unauthenticated or mid-attempt. */
  reconnectNow(): void;

  /**
   * Listens to the client's own events, the server's and the app's (typed by the event
   * map). Every event with an offset is delivered once: a replayed or repeated one is skipped.
   * Returns the function that removes this listener.
   *
   * @example
   * const stop = client.on("state", render);
   * // later
   * stop();
   */
  on<K extends keyof TetherClientEvents<E>>(event: K, listener: TetherClientEvents<E>[K]): Unsubscribe;
  /** Without an event map, any app event: its published data with its `offset` (and `room`). */
  on(event: UntypedEventName<E>, listener: AnyAppListener): Unsubscribe;
  /** As {@link TetherClient.on}, for the next event only. Returns the function that removes it before. */
  once<K extends keyof TetherClientEvents<E>>(event: K, listener: TetherClientEvents<E>[K]): Unsubscribe;
  once(event: UntypedEventName<E>, listener: AnyAppListener): Unsubscribe;
  /** Removes a listener, or all listeners of the event when `listener` is omitted. */
  off<K extends keyof TetherClientEvents<E>>(event: K, listener?: TetherClientEvents<E>[K]): this;
  off(event: UntypedEventName<E>, listener?: AnyAppListener): this;
  /**
   * Listens to every server event, with its name: the built-in ones and the app's,
   * each delivered once (replays and repeats skipped), in every tab whether or not it
   * holds the socket. Returns the function that removes the listener.
   *
   * @example
   * client.onAny((event, payload) => console.log(event, payload));
   */
  onAny(listener: (event: string, ...args: unknown[]) => void): Unsubscribe;

  /**
   * Emits a client → server event and resolves with the server's acknowledgement: for an
   * app event, its handler's result. Rejects with a TetherClientError: the server's code
   * for a refused event or a failed handler (INVALID_INPUT, RATE_LIMITED, INTERNAL or the
   * handler's own), TIMEOUT after `ackTimeoutMs`, NOT_CONNECTED when closed.
   * While reconnecting the event is buffered and sent once connected (if within the timeout).
   */
  emitWithAck<K extends EmittableEvent<E>>(event: K, ...args: EmittableArgs<E, K>): Promise<EmittableResult<E, K>>;
  /**
   * Emits an app event to its server handler without waiting for the result (the
   * server still validates and rate-limits it). Throws NOT_CONNECTED when closed.
   */
  emit<K extends AppClientEventName<E>>(event: K, payload: AppClientPayload<E, K>): void;
  /** `echo`: the server acknowledges with the same payload. */
  echo(payload: unknown, timeoutMs?: number): Promise<unknown>;

  /**
   * Joins a room with history at run time (the server's `canJoin` decides), on any
   * instance: events since the last offset this client saw of the room are replayed
   * first (`recovery` says how that went), then live ones follow. The client remembers
   * the room and its offset, and asks for it again on every reconnect (refused then:
   * `room:revoked`, and it is forgotten). Rejects with FORBIDDEN when refused.
   * `offset`: resume from there (e.g. one the app kept from an earlier visit)
   * instead of the client's own last offset of the room, if any; without either, from now.
   */
  join(room: string, options?: { offset?: Offset; presence?: PresenceData }): Promise<RoomJoined>;
  /** Leaves a room (and ends its subscription, if any): its events and presence stop, and it is not asked for on reconnect. */
  leave(room: string): Promise<void>;
  /** The members of a room this client is in, across the fleet, with their presence data. */
  members(room: string): Promise<RoomMember[]>;

  /**
   * A room the app wants to be in until it leaves: the subscription joins once the
   * client is connected (it may be made before `connect()`), is kept across reconnects
   * and joined again from its last offset, retries transient refusals (UNAVAILABLE,
   * RATE_LIMITED, timeouts) with the connection's backoff, and ends with an `ended`
   * event when the server refuses it (FORBIDDEN) or the app leaves. Its listeners see
   * that room's events only. Subscribing again to a room returns the same subscription.
   *
   * @example
   * const doc = client.subscribe("doc:42", { presence: { cursor: 0 } });
   * doc.on("doc:edit", (edit) => apply(edit));
   * doc.on("ended", ({ reason }) => showClosed(reason));
   * const { events } = await doc.history({ limit: 50 });
   */
  subscribe(room: string, options?: SubscriptionOptions): Subscription<E>;
  /** Alias of {@link TetherClient.subscribe}. */
  room(room: string, options?: SubscriptionOptions): Subscription<E>;
  /**
   * The last events of the user's own stream (or, with `room`, of a room this client
   * is in), oldest first: at most `limit` (server default 50, at most 100), before the
   * offset `before` when given. Rejects with NOT_CONNECTED when the client is closed.
   */
  history(options?: HistoryOptions & { room?: string }): Promise<HistoryPage>;
  /** Sets (replaces) this user's presence data in a room this client is in. */
  setPresence(room: string, data: PresenceData): Promise<void>;
}

import type { HistoryOptions, HistoryPage } from "@tether/shared";

export type { HistoryOptions, HistoryPage };

/** What `subscribe` takes. */
export interface SubscriptionOptions {
  /** Resume the first join from this offset instead of the client's own last offset of the room. */
  offset?: Offset;
  /** This user's presence data in the room, sent with every join (change it with `setPresence`). */
  presence?: PresenceData;
}

/**
 * A subscription's state: `"subscribing"` until the room is joined (and again while the
 * connection is down), `"subscribed"` while in it, `"ended"` for good (left or refused).
 */
export type SubscriptionState = "subscribing" | "subscribed" | "ended";

/** Why a subscription ended: the app left, or the server refused the room (`error.code` says why, e.g. FORBIDDEN). */
export type SubscriptionEnd = { reason: "left" } | { reason: "refused"; error: TetherClientError };

/** A subscription's `subscribed` event. */
export interface SubscribedEvent {
  room: string;
  /** Where the room's stream stands. */
  offset: Offset;
  /** The room's members, when the subscription joined it itself (undefined when a reconnect brought it back). */
  members: RoomMember[] | undefined;
  /** A reconnect's handshake brought the room back (events missed meanwhile were replayed). */
  resumed: boolean;
}

/** Events of a subscription itself. */
export interface SubscriptionOwnEvents {
  /** The room was joined, or joined again after a reconnect. */
  subscribed: (event: SubscribedEvent) => void;
  /** A join failed and will be retried. */
  error: (error: TetherClientError) => void;
  /** The subscription ended for good. */
  ended: (end: SubscriptionEnd) => void;
  /** Every state change. */
  state: (state: SubscriptionState) => void;
}

/** The server's events a subscription's listeners get for its room. */
export type RoomServerEvents = Pick<
  ServerToClientEvents,
  "presence:join" | "presence:leave" | "presence:update" | "recovery"
>;

/** Everything a subscription's `on()` accepts: its own events, the room's presence and recovery, and the app's events. */
export type SubscriptionEvents<E extends TetherEvents = TetherEvents> = SubscriptionOwnEvents &
  RoomServerEvents &
  AppListeners<E>;

/** A listener of any app event, for a client with no event map: the published data with its offset. */
export type AnyAppListener = (payload: AppEventPayload<Record<string, unknown>>) => void;

/**
 * A listener of every server event of one room (`Subscription.onAny`): the app's events
 * (with their `offset` and `room`), `presence:*` and `recovery`, with their names.
 */
export type RoomAnyListener = (event: string, payload: unknown) => void;

/** Names `on()` takes besides the typed ones: any string when the map has no server events, else none. */
export type UntypedEventName<E extends TetherEvents> = string extends AppServerEventName<E> ? string : never;

/** A room subscription (see {@link TetherClient.subscribe}). */
export interface Subscription<E extends TetherEvents = TetherEvents> {
  readonly room: string;
  readonly state: SubscriptionState;
  /** The last offset delivered of the room. */
  readonly offset: Offset | undefined;
  /** Listens to the subscription's events and the room's; returns the function that removes the listener. */
  on<K extends keyof SubscriptionEvents<E>>(event: K, listener: SubscriptionEvents<E>[K]): Unsubscribe;
  on(event: UntypedEventName<E>, listener: AnyAppListener): Unsubscribe;
  once<K extends keyof SubscriptionEvents<E>>(event: K, listener: SubscriptionEvents<E>[K]): Unsubscribe;
  once(event: UntypedEventName<E>, listener: AnyAppListener): Unsubscribe;
  /** Removes a listener, or all listeners of the event when `listener` is omitted. */
  off<K extends keyof SubscriptionEvents<E>>(event: K, listener?: SubscriptionEvents<E>[K]): void;
  off(event: UntypedEventName<E>, listener?: AnyAppListener): void;
  /**
   * Listens to every server event of this room only, with its name: the app's events,
   * `presence:join` / `presence:leave` / `presence:update` and `recovery` (not the
   * subscription's own `state`, `subscribed`, `error`, `ended`). Returns the function that
   * removes the listener.
   *
   * @example
   * const stop = doc.onAny((event, payload) => log(event, payload));
   */
  onAny(listener: RoomAnyListener): Unsubscribe;
  /** The room's last events (see {@link TetherClient.history}). */
  history(options?: HistoryOptions): Promise<HistoryPage>;
  /** The room's members, with their presence data. */
  presence(): Promise<RoomMember[]>;
  /** Sets this user's presence data in the room (kept, and sent again with every join). */
  setPresence(data: PresenceData): Promise<void>;
  /** Leaves the room and ends the subscription (`ended` with reason `"left"`). */
  leave(): Promise<void>;
}

/** What `join` resolves to. */
export interface RoomJoined {
  /** How the replay from the client's last offset of the room went (a first join: recovered, none missed). */
  recovery: RecoveryPayload;
  /** The room's members, this client's user included. */
  members: RoomMember[];
  /** Where the room's stream stands after the replay. */
  offset: Offset;
}
