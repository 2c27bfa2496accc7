import {
  ClientEvent,
  ErrorCode,
  type HistoryRequest,
  type LoginResponse,
  type Offset,
  type PresenceData,
  type RoomMember,
  type RoomRevokedPayload,
  ServerEvent,
  type SessionResponse,
  type TetherEvents,
  type WelcomePayload,
} from "@tether/shared";
import type { BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { ClientErrorCode, TetherClientError } from "./errors.js";
import type { LoginCredentials, TetherHttp } from "./http.js";
import { type ClientLog, SILENT } from "./logger.js";
import { roomOf } from "./offset.js";
import { type OffsetBook, USER_STREAM } from "./offset-book.js";
import type { ClientStats } from "./stats.js";
import { RoomSubscription, type SubscriptionHost } from "./subscription.js";
import type {
  EmittableArgs,
  EmittableEvent,
  EmittableResult,
  HistoryOptions,
  HistoryPage,
  RoomJoined,
  SubscriptionOptions,
  TetherClient,
  TetherSocket,
  TetherState,
  Unsubscribe,
} from "./types.js";
import { wireEvents } from "./wire-events.js";

/**
 * How a client's requests reach the server: over a socket of its own, or through
 * the hub that holds the socket tabs share. The facade has checked the client is
 * active and keeps the offsets; a transport only carries the request and its answer.
 */
export interface Requests {
  /** Resolves with `echo`'s payload, or an app event's unwrapped result. */
  emitWithAck(event: string, args: unknown[]): Promise<unknown>;
  emit(event: string, payload: unknown): void;
  /** `timeoutMs` undefined: the connection's `ackTimeoutMs`. */
  echo(payload: unknown, timeoutMs: number | undefined): Promise<unknown>;
  join(room: string, offset: Offset | undefined, presence: PresenceData | undefined): Promise<RoomJoined>;
  leave(room: string): Promise<void>;
  members(room: string): Promise<RoomMember[]>;
  history(request: HistoryRequest): Promise<HistoryPage>;
  setPresence(room: string, data: PresenceData): Promise<void>;
}

type Listener = (...args: unknown[]) => void;
type AnyListener = (event: string, ...args: unknown[]) => void;

/** What every client is built with besides its HTTP routes and offsets. */
export interface FacadeOptions {
  /** The connection's backoff, which subscriptions retry transient refusals with. */
  retry: BackoffOptions;
  log: ClientLog;
}

/**
 * The public surface of every Tether client, written once: state, offsets, the
 * HTTP routes, listeners and requests. A client with a socket of its own and a tab
 * that shares another's connection differ only in what they supply: how the
 * connection opens and closes (`connect`, `disconnect`, `stop`), how requests
 * travel (`requests`), and the server events they hand to `deliver`.
 */
export abstract class ClientFacade implements TetherClient {
  abstract readonly socket: TetherSocket;
  /** True between `connect()` and a stop (close, logout, session gone, origin refused). */
  protected active = false;
  /** How requests reach the server. */
  protected abstract readonly requests: Requests;
  private current: TetherState = "closed";
  /** The app's listeners, the client's own `state` and `error` included. */
  private readonly listeners = new Emitter<Record<string, Listener>>();
  private readonly anyListeners = new Emitter<{ any: AnyListener }>();
  /** The rooms the app subscribed to, by name. */
  private readonly subscriptions = new Map<string, RoomSubscription>();
  protected readonly log: ClientLog;
  private readonly subscriptionHost: SubscriptionHost;
  /** Subscriptions join one at a time: a page opening many rooms never floods the socket's rate limit. */
  private joinTurn: Promise<unknown> = Promise.resolve();
  private joinsPausedUntil = 0;

  constructor(
    protected readonly http: TetherHttp,
    /** The last offset delivered per stream: what this client resumes from. */
    protected readonly offsets: OffsetBook,
    options: FacadeOptions = { retry: { baseMs: 1000, maxMs: 30_000, random: Math.random }, log: SILENT },
  ) {
    this.log = options.log;
    this.subscriptionHost = {
      ready: () => this.active && this.current === "connected",
      active: () => this.active,
      offsetOf: (room) => this.offsets.get(room),
      join: (room, offset, presence) => this.joinInTurn(() => this.join(room, { offset, presence })),
      pauseJoins: (ms) => {
        this.joinsPausedUntil = Math.max(this.joinsPausedUntil, Date.now() + ms);
      },
      leave: (room) => this.leaveRoom(room),
      forget: (room) => this.offsets.forget(room),
      members: (room) => this.members(room),
      history: (request) => this.history(request),
      setPresence: (room, data) => this.setPresence(room, data),
      ended: (subscription) => {
        if (this.subscriptions.get(subscription.room) === subscription) this.subscriptions.delete(subscription.room);
      },
      retry: options.retry,
      log: options.log,
    };
  }

  abstract stats(): ClientStats;
  abstract connect(): this;
  abstract disconnect(): void;
  abstract reconnectNow(): void;
  /** Stops wanting the connection, ending in `final`; requests are refused from now on. */
  protected abstract stop(final: "closed" | "unauthenticated"): void;

  get state(): TetherState {
    return this.current;
  }

  get lastOffset(): Offset | undefined {
    return this.offsets.get(USER_STREAM);
  }

  get roomOffsets(): Readonly<Record<string, Offset>> {
    return this.offsets.rooms();
  }

  login(credentials: LoginCredentials): Promise<LoginResponse> {
    return this.http.login(credentials);
  }

  async logout(): Promise<void> {
    // Close first: the server's `session:ended` for our own logout would otherwise flash "unauthenticated".
    this.offsets.clear();
    this.disconnect();
    await this.http.logout();
  }

  session(): Promise<SessionResponse> {
    return this.http.session();
  }

  close(): void {
    this.disconnect();
  }

  on(event: string, listener: (...args: never[]) => void): Unsubscribe {
    return this.listeners.on(event, listener as Listener);
  }

  once(event: string, listener: (...args: never[]) => void): Unsubscribe {
    return this.listeners.once(event, listener as Listener);
  }

  off(event: string, listener?: (...args: never[]) => void): this {
    // Without a listener, all the app's listeners of the event go; the client's own handling is no listener.
    this.listeners.off(event, listener as Listener | undefined);
    return this;
  }

  onAny(listener: AnyListener): Unsubscribe {
    return this.anyListeners.on("any", listener);
  }

  async emitWithAck<K extends EmittableEvent<TetherEvents>>(
    event: K,
    ...args: EmittableArgs<TetherEvents, K>
  ): Promise<EmittableResult<TetherEvents, K>> {
    this.assertActive(event);
    return (await this.requests.emitWithAck(event, args)) as EmittableResult<TetherEvents, K>;
  }

  emit(event: string, payload: unknown): void {
    this.assertActive(event);
    this.requests.emit(event, payload);
  }

  async echo(payload: unknown, timeoutMs?: number): Promise<unknown> {
    this.assertActive(ClientEvent.Echo);
    return this.requests.echo(payload, timeoutMs);
  }

  async join(
    room: string,
    options: { offset?: Offset | undefined; presence?: PresenceData | undefined } = {},
  ): Promise<RoomJoined> {
    this.assertActive(ClientEvent.RoomJoin);
    const joined = await this.requests.join(room, options.offset ?? this.offsets.get(room), options.presence);
    // Replayed events moved the offset already; the answer's is where the room stands after them.
    this.offsets.advance(room, joined.offset);
    return joined;
  }

  async leave(room: string): Promise<void> {
    this.subscriptions.get(room)?.end({ reason: "left" });
    await this.leaveRoom(room);
  }

  async members(room: string): Promise<RoomMember[]> {
    this.assertActive(ClientEvent.RoomMembers);
    return this.requests.members(room);
  }

  subscribe(room: string, options: SubscriptionOptions = {}): RoomSubscription {
    const existing = this.subscriptions.get(room);
    if (existing) return existing;
    const subscription = new RoomSubscription(room, options, this.subscriptionHost);
    // Registered before it joins: the join's replayed events find it.
    this.subscriptions.set(room, subscription);
    subscription.start();
    return subscription;
  }

  room(room: string, options?: SubscriptionOptions): RoomSubscription {
    return this.subscribe(room, options);
  }

  async history(options: HistoryOptions & { room?: string | undefined } = {}): Promise<HistoryPage> {
    this.assertActive(ClientEvent.History);
    const request: HistoryRequest = {};
    if (options.room !== undefined) request.room = options.room;
    if (options.limit !== undefined) request.limit = options.limit;
    if (options.before !== undefined) request.before = options.before;
    return this.requests.history(request);
  }

  async setPresence(room: string, data: PresenceData): Promise<void> {
    this.assertActive(ClientEvent.PresenceSet);
    await this.requests.setPresence(room, data);
  }

  /** Runs a subscription's join after the ones before it, and after a rate limit's pause. */
  private joinInTurn(join: () => Promise<RoomJoined>): Promise<RoomJoined> {
    const turn = this.joinTurn.then(async () => {
      const wait = this.joinsPausedUntil - Date.now();
      if (wait > 0) await new Promise((resume) => setTimeout(resume, wait));
      return join();
    });
    this.joinTurn = turn.catch(() => undefined);
    return turn;
  }

  private async leaveRoom(room: string): Promise<void> {
    // Forgotten at once: a reconnect from now on does not ask for it.
    this.offsets.forget(room);
    this.assertActive(ClientEvent.RoomLeave);
    await this.requests.leave(room);
  }

  /**
   * Every server frame reaches the app through here, as the events it stands for (`wireEvents`),
   * each once: the offsets record it,
   * `received` sees it, a `session:ended` stops the client, and the app's listeners
   * run unless the event was delivered already (a replay or a repeat).
   */
  protected deliver(frameEvent: string, frameArgs: unknown[]): void {
    for (const [event, args] of wireEvents(frameEvent, frameArgs)) this.deliverOne(event, args);
  }

  private deliverOne(event: string, args: unknown[]): void {
    const payload = args[0];
    const duplicate = this.offsets.track(event, payload);
    this.received(event, payload);
    if (event === ServerEvent.SessionEnded && this.active) this.stop("unauthenticated");
    if (duplicate) {
      this.log.debug("duplicate skipped", { event });
      return;
    }
    this.log.debug("event", { event });
    this.listeners.emit(event, ...args);
    this.anyListeners.emit("any", event, ...args);
    this.toSubscriptions(event, args);
  }

  /** A room's events to its subscription; `welcome` and `room:revoked` tell subscriptions where they stand. */
  private toSubscriptions(event: string, args: unknown[]): void {
    if (this.subscriptions.size === 0) return;
    const payload = args[0];
    if (event === ServerEvent.Welcome) {
      const rooms = (payload as WelcomePayload).rooms ?? {};
      for (const subscription of [...this.subscriptions.values()]) subscription.welcomed(rooms);
      return;
    }
    const room = roomOf(payload);
    const subscription = room === undefined ? undefined : this.subscriptions.get(room);
    if (!subscription) return;
    if (event === ServerEvent.RoomRevoked) {
      const error = new TetherClientError({
        code: ErrorCode.Forbidden,
        message: `The room "${(payload as RoomRevokedPayload).room}" is no longer allowed`,
      });
      subscription.end({ reason: "refused", error });
      return;
    }
    subscription.deliver(event, payload);
  }

  /** A server event, before the app's listeners see it: for what a transport records of its own. */
  protected received(_event: string, _payload: unknown): void {}

  protected setState(state: TetherState): void {
    if (state === this.current) return;
    this.log.info("state", { from: this.current, to: state });
    this.current = state;
    this.listeners.emit("state", state);
    for (const subscription of [...this.subscriptions.values()]) {
      if (state === "connected" && this.active) subscription.connected();
      else if (state !== "connected") subscription.lost();
    }
  }

  /** A failed attempt or a lost connection, for the app's `error` listeners. */
  protected reportError(error: TetherClientError): void {
    this.log.warn("connection error", { code: error.code, message: error.message, retryable: error.retryable });
    this.listeners.emit("error", error);
  }

  private assertActive(event: string): void {
    if (!this.active)
      throw new TetherClientError({
        code: ClientErrorCode.NotConnected,
        message: `Cannot emit "${event}": the client is ${this.current}`,
      });
  }
}
