import {
  ClientEvent,
  type ClientToServerEvents,
  ErrorCode,
  type EventAck,
  type HandshakeAuth,
  isErrorCode,
  type LoginResponse,
  type Offset,
  type RecoveryPayload,
  type RoomMember,
  type RoomRevokedPayload,
  ServerEvent,
  type ServerToClientEvents,
  type SessionResponse,
  type TetherEvents,
  type TicketPayload,
  type WelcomePayload,
} from "@tether/shared";
import { io, type ManagerOptions, type SocketOptions } from "socket.io-client";
import { Backoff } from "./backoff.js";
import { isPageHidden, watchBrowserWake } from "./browser.js";
import { classifyFailure, errorFromConnectError } from "./classify.js";
import { Emitter } from "./emitter.js";
import { ClientErrorCode, TetherClientError } from "./errors.js";
import type { LoginCredentials, TetherHttp } from "./http.js";
import { OffsetBook, type OffsetStore, USER_STREAM } from "./offset-book.js";
import { type ClientStats, StatsRecorder } from "./stats.js";
import type {
  AckResult,
  ClientOwnEvents,
  EmittableArgs,
  EmittableEvent,
  EmittableResult,
  PassThroughSocketOptions,
  RoomJoined,
  TetherClient,
  TetherClientEvents,
  TetherSocket,
  TetherState,
} from "./types.js";
import { type StaleWatch, startStaleWatch } from "./watchdog.js";

/** Everything the state machine needs, with defaults already applied. */
export interface ClientConfig {
  origin: string;
  /** The Socket.IO path, e.g. `/socket.io/` (`socketOptions.path` overrides it). */
  socketPath: string;
  http: TetherHttp;
  transports: NonNullable<ManagerOptions["transports"]>;
  reconnectBaseDelayMs: number;
  reconnectMaxDelayMs: number;
  ackTimeoutMs: number;
  staleAfterMs: number;
  socketOptions: PassThroughSocketOptions;
  random: () => number;
  resumeTickets: boolean;
  /** The host's token source; undefined: `POST /api/auth/ws-token`. */
  getToken: (() => Promise<{ token: string; expiresAt?: number }>) | undefined;
  /** How long a wake-up check waits for the server's answer before replacing the socket. */
  wakeCheckTimeoutMs: number;
  /** Listen to the page's own wake-ups (`online`, visible, `pageshow`); off where tabs report them instead. */
  watchWake: boolean;
  /** Where offsets survive a reload; undefined: memory only. */
  offsetStore: OffsetStore | undefined;
}

type AnyListener = (...args: never[]) => void;
/** The socket's listener methods without the event-name typing, for forwarding `client.on`. */
interface LooseEmitter {
  on(event: string, listener: AnyListener): unknown;
  once(event: string, listener: AnyListener): unknown;
  off(event: string, listener?: AnyListener): unknown;
}

const OWN_EVENTS: ReadonlySet<string> = new Set<keyof ClientOwnEvents>(["state", "error"]);

/**
 * The connection state machine. socket.io-client's reconnection is off: this class
 * decides when to retry (backoff with jitter at the cap), and its `auth` callback
 * fetches a fresh single-use token before every connect.
 */
export class TetherClientImpl implements TetherClient {
  readonly socket: TetherSocket;
  private current: TetherState = "closed";
  private readonly events = new Emitter<ClientOwnEvents>();
  private readonly backoff: Backoff;
  /** True between `connect()` and a stop (close, logout, session gone, origin refused). */
  private active = false;
  private everConnected = false;
  /** Bumped whenever an attempt ends or is abandoned, so late token responses are dropped. */
  private attemptId = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** The last offset delivered per stream: the user's and each room's. */
  private readonly offsets: OffsetBook;
  private readonly recorder = new StatsRecorder();
  /** A wake-up check is waiting for the server's answer. */
  private checking = false;
  /** Set by the any-listener (which runs first) when the event being dispatched was already delivered. */
  private duplicate = false;
  /** App listeners → the wrappers that skip duplicates. */
  private readonly wrappers = new WeakMap<AnyListener, AnyListener>();
  private staleWhileHidden = false;
  private watch: StaleWatch | undefined;
  private unwatchBrowser: (() => void) | undefined;
  private readonly internal = new Map<string, AnyListener[]>();
  /** The resume ticket the server pushed last (single use: dropped once presented). */
  private ticket: { ticket: string; expiresAt: number } | undefined;
  /** The attempt in flight presented a ticket: if it is refused, the next attempt fetches a token at once. */
  private presentedTicket = false;
  /** Streams were moved back after the handshake in flight was sent: it resumes too late, so connect again. */
  private rewoundInFlight = false;

  constructor(private readonly config: ClientConfig) {
    this.offsets = new OffsetBook(config.offsetStore);
    // Offsets restored after a reload: the page was away since it last saved them.
    this.recorder.awaySince = this.offsets.restoredAt;
    this.backoff = new Backoff({
      baseMs: config.reconnectBaseDelayMs,
      maxMs: config.reconnectMaxDelayMs,
      random: config.random,
    });
    const options: Partial<ManagerOptions & SocketOptions> = {
      path: config.socketPath,
      transports: config.transports,
      withCredentials: true,
      // A Manager of its own: clients never share an engine connection or each other's auth.
      forceNew: true,
      // Fall back to polling when WebSocket is blocked, instead of failing every attempt.
      tryAllTransports: true,
      ...config.socketOptions,
      reconnection: false,
      autoConnect: false,
      auth: (cb) => this.authorize(cb),
    };
    this.socket = io(config.origin, options);
    this.socket.on("connect", () => this.onConnect());
    this.socket.on("connect_error", (err) => this.onConnectError(err));
    this.socket.on("disconnect", (reason) => this.onDisconnect(reason));
    this.listenInternal(ServerEvent.SessionEnded, () => this.stop("unauthenticated"));
    this.listenInternal(ServerEvent.Recovery, ((payload: RecoveryPayload) => this.onRecovery(payload)) as AnyListener);
    this.listenInternal(ServerEvent.RoomRevoked, ((payload: RoomRevokedPayload) => {
      // No longer allowed: forget it, so the next reconnect does not ask again.
      this.offsets.forget(payload.room);
    }) as AnyListener);
    this.listenInternal(ServerEvent.Ticket, ((payload: TicketPayload) => {
      this.ticket = payload;
    }) as AnyListener);
    this.socket.onAny((event: string, payload: unknown) => this.track(event, payload));
  }

  get state(): TetherState {
    return this.current;
  }

  get lastOffset(): Offset | undefined {
    return this.offsets.get(USER_STREAM);
  }

  get roomOffsets(): Readonly<Record<string, Offset>> {
    return this.offsets.rooms();
  }

  /** Adopts a resume ticket pushed to another tab's connection (a new leader's first reconnect). */
  useTicket(ticket: { ticket: string; expiresAt: number }): void {
    this.ticket ??= ticket;
  }

  stats(): ClientStats {
    return { mode: "tab", tabs: 1, ...this.recorder.snapshot() };
  }

  /**
   * Moves streams back to older offsets (a tab that shares this connection saw less
   * than it did): if connected, reconnects at once so the server replays from there.
   */
  rewind(offsets: Record<string, Offset>): void {
    if (!this.offsets.rewind(offsets)) return;
    if (this.active && this.current === "connected") this.forceReconnect();
    // A handshake already sent asks for the newer offsets: once it connects, connect again from these.
    else if (this.active) this.rewoundInFlight = true;
  }

  login(credentials: LoginCredentials): Promise<LoginResponse> {
    return this.config.http.login(credentials);
  }

  async logout(): Promise<void> {
    // Close first: the server's `session:ended` for our own logout would otherwise flash "unauthenticated".
    this.offsets.clear();
    this.stop("closed");
    await this.config.http.logout();
  }

  session(): Promise<SessionResponse> {
    return this.config.http.session();
  }

  connect(): void {
    if (this.active) return;
    this.active = true;
    this.everConnected = false;
    this.backoff.reset();
    this.setState("connecting");
    if (this.config.staleAfterMs > 0) {
      this.watch = startStaleWatch({ staleAfterMs: this.config.staleAfterMs, onStale: () => this.onStale() });
    }
    if (this.config.watchWake) this.unwatchBrowser = watchBrowserWake(() => this.wake());
    this.open();
  }

  disconnect(): void {
    this.stop("closed");
  }

  close(): void {
    this.stop("closed");
  }

  reconnectNow(): void {
    // Without a pending timer an attempt is already under way (token fetch or handshake).
    if (!this.active || this.current === "connected" || this.retryTimer === undefined) return;
    this.open();
  }

  /**
   * The page woke up (back online, visible again, restored from the back/forward
   * cache): a pending retry runs now, and a socket that looks connected must answer
   * an acknowledged ping within `wakeCheckTimeoutMs`, or it is replaced at once.
   */
  wake(): void {
    if (!this.active) return;
    const stalled = this.watch?.check() ?? false;
    if (!stalled && this.staleWhileHidden) this.onStale();
    if (this.current === "connected") this.verifyConnection();
    else this.reconnectNow();
  }

  on<E extends keyof TetherClientEvents>(event: E, listener: TetherClientEvents[E]): this {
    if (isOwnEvent(event)) this.events.on(event, listener as ClientOwnEvents[typeof event]);
    else this.loose.on(event, this.wrap(listener as AnyListener));
    return this;
  }

  once<E extends keyof TetherClientEvents>(event: E, listener: TetherClientEvents[E]): this {
    if (isOwnEvent(event)) this.events.once(event, listener as ClientOwnEvents[typeof event]);
    else {
      const wrapped = this.wrap(listener as AnyListener);
      // Once means once delivered: a skipped duplicate does not use it up.
      const onceDelivered = ((...args: never[]) => {
        if (this.duplicate) return;
        this.loose.off(event, onceDelivered);
        wrapped(...args);
      }) as AnyListener;
      this.wrappers.set(listener as AnyListener, onceDelivered);
      this.loose.on(event, onceDelivered);
    }
    return this;
  }

  off<E extends keyof TetherClientEvents>(event: E, listener?: TetherClientEvents[E]): this {
    if (isOwnEvent(event)) this.events.off(event, listener as ClientOwnEvents[typeof event] | undefined);
    // Without a listener, remove only the app's: the client's own handlers stay.
    else if (listener !== undefined)
      this.loose.off(event, this.wrappers.get(listener as AnyListener) ?? (listener as AnyListener));
    else this.removeAppListeners(event);
    return this;
  }

  /** App listeners see each event once: a replayed or repeated offset is skipped. */
  private wrap(listener: AnyListener): AnyListener {
    const wrapped = ((...args: never[]) => {
      if (!this.duplicate) listener(...args);
    }) as AnyListener;
    this.wrappers.set(listener, wrapped);
    return wrapped;
  }

  async emitWithAck<K extends EmittableEvent<TetherEvents>>(
    event: K,
    ...args: EmittableArgs<TetherEvents, K>
  ): Promise<EmittableResult<TetherEvents, K>> {
    const reply = await this.ack(event, args, this.config.ackTimeoutMs);
    // `echo` answers with its payload; the app's events with an EventAck.
    return (Object.hasOwn(BUILT_IN_EMITS, event) ? reply : unwrapAck(event, reply)) as EmittableResult<TetherEvents, K>;
  }

  emit(event: string, payload: unknown): void {
    this.assertActive(event);
    (this.socket.emit as (event: string, ...args: unknown[]) => unknown)(event, payload);
  }

  async join(room: string, options: { offset?: Offset | undefined } = {}): Promise<RoomJoined> {
    const offset = options.offset ?? this.offsets.get(room);
    const result = (await this.ack(
      ClientEvent.RoomJoin,
      [offset === undefined ? { room } : { room, offset }],
      this.config.ackTimeoutMs,
    )) as AckResult<typeof ClientEvent.RoomJoin>;
    if (result.ok !== true) throw ackError(ClientEvent.RoomJoin, result);
    // Replayed events moved the offset already; the ack's is where the room stands after them.
    this.offsets.advance(room, result.offset);
    return { recovery: result.recovery, members: result.members, offset: result.offset };
  }

  async leave(room: string): Promise<void> {
    // Forgotten at once: a reconnect from now on does not ask for it.
    this.offsets.forget(room);
    const result = (await this.ack(ClientEvent.RoomLeave, [{ room }], this.config.ackTimeoutMs)) as AckResult<
      typeof ClientEvent.RoomLeave
    >;
    if (result.ok !== true) throw ackError(ClientEvent.RoomLeave, result);
  }

  async members(room: string): Promise<RoomMember[]> {
    const result = (await this.ack(ClientEvent.RoomMembers, [{ room }], this.config.ackTimeoutMs)) as AckResult<
      typeof ClientEvent.RoomMembers
    >;
    if (result.ok !== true) throw ackError(ClientEvent.RoomMembers, result);
    return result.members;
  }

  echo(payload: unknown, timeoutMs: number = this.config.ackTimeoutMs): Promise<unknown> {
    return this.ack("echo", [payload], timeoutMs);
  }

  private assertActive(event: string): void {
    if (!this.active) {
      throw new TetherClientError({
        code: ClientErrorCode.NotConnected,
        message: `Cannot emit "${event}": the client is ${this.current}`,
      });
    }
  }

  private async ack(event: string, args: unknown[], timeoutMs: number): Promise<unknown> {
    this.assertActive(event);
    const timed = this.socket.timeout(timeoutMs);
    const emit = timed.emitWithAck as (event: string, ...args: unknown[]) => Promise<unknown>;
    try {
      return await emit.call(timed, event, ...args);
    } catch (cause) {
      // socket.io-client rejects with "operation has timed out" or "socket has been disconnected".
      const lost = cause instanceof Error && /disconnected/i.test(cause.message);
      throw new TetherClientError({
        code: lost ? ClientErrorCode.Disconnected : ClientErrorCode.Timeout,
        message: lost
          ? `Connection lost before "${event}" was acknowledged`
          : `No acknowledgement of "${event}" within ${timeoutMs} ms`,
        cause,
      });
    }
  }

  private get loose(): LooseEmitter {
    return this.socket as unknown as LooseEmitter;
  }

  /**
   * Socket.IO calls this before every connect: present the resume ticket the
   * server pushed (once), or fetch a fresh token; never reuse either.
   */
  private authorize(cb: (data: object) => void): void {
    const id = this.attemptId;
    const ticket = this.ticket;
    this.ticket = undefined;
    this.presentedTicket = ticket !== undefined && this.config.resumeTickets && ticket.expiresAt > Date.now();
    if (this.presentedTicket && ticket) {
      cb(this.handshakeAuth({ ticket: ticket.ticket }));
      return;
    }
    this.fetchToken().then(
      ({ token }) => {
        if (id !== this.attemptId || !this.active) return;
        cb(this.handshakeAuth({ token }));
      },
      (err: unknown) => {
        if (id !== this.attemptId || !this.active) return;
        // Abort this attempt rather than handshake with a bad token.
        this.socket.disconnect();
        this.fail(asClientError(err));
      },
    );
  }

  /** A fresh token: from the host's `getToken` when given, else from Tether's token route. */
  private async fetchToken(): Promise<{ token: string }> {
    const { getToken, http } = this.config;
    if (getToken === undefined) return http.wsToken();
    const minted: unknown = await getToken();
    const token = typeof minted === "object" && minted !== null ? (minted as { token?: unknown }).token : undefined;
    if (typeof token !== "string" || token === "")
      throw new TetherClientError({
        code: ClientErrorCode.BadResponse,
        message: "getToken gave no token",
        retryable: true,
      });
    return { token };
  }

  /** `{ token | ticket, offset?, rooms?, awayMs? }`: where each stream should resume, and how long we were away. */
  private handshakeAuth(credential: { token: string } | { ticket: string }): HandshakeAuth {
    this.rewoundInFlight = false;
    const auth: HandshakeAuth = { ...credential };
    const offset = this.offsets.get(USER_STREAM);
    if (offset !== undefined) auth.offset = offset;
    const rooms = this.offsets.rooms();
    if (Object.keys(rooms).length > 0) auth.rooms = rooms;
    const awayMs = this.recorder.awayMs();
    if (awayMs !== undefined) auth.awayMs = awayMs;
    return auth;
  }

  private open(): void {
    this.clearRetryTimer();
    this.attemptId += 1;
    this.socket.connect();
  }

  private onConnect(): void {
    if (!this.active) return;
    if (this.rewoundInFlight) {
      this.rewoundInFlight = false;
      this.forceReconnect();
      return;
    }
    this.backoff.reset();
    this.everConnected = true;
    this.recorder.onConnect();
    this.setState("connected");
  }

  private onConnectError(err: Error): void {
    if (!this.active) return;
    const error = errorFromConnectError(err);
    if (this.presentedTicket && error.code === ErrorCode.TokenInvalid) {
      // A refused ticket (used, expired, from before a secret rotation): fetch a token now, no backoff.
      this.presentedTicket = false;
      this.open();
      return;
    }
    this.fail(error);
  }

  private onDisconnect(reason: string): void {
    if (!this.active || reason === "io client disconnect") return;
    this.recorder.onDisconnect();
    this.fail(new TetherClientError({ code: ClientErrorCode.Disconnected, message: `Connection lost: ${reason}` }));
  }

  private fail(error: TetherClientError): void {
    this.attemptId += 1;
    this.events.emit("error", error);
    if (!this.active) return; // an "error" listener closed the client
    const action = classifyFailure(error);
    if (action.kind === "retry") this.scheduleRetry(action.minDelayMs);
    else this.stop(action.kind);
  }

  private scheduleRetry(minDelayMs: number): void {
    this.clearRetryTimer();
    const delay = Math.max(minDelayMs, this.backoff.next());
    this.recorder.nextRetryAt = Date.now() + delay;
    this.setState(this.everConnected ? "reconnecting" : "connecting");
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.open();
    }, delay);
  }

  private stop(final: "closed" | "unauthenticated"): void {
    this.active = false;
    this.recorder.awaySince = undefined;
    this.ticket = undefined;
    this.attemptId += 1;
    this.clearRetryTimer();
    this.watch?.stop();
    this.watch = undefined;
    this.unwatchBrowser?.();
    this.unwatchBrowser = undefined;
    this.staleWhileHidden = false;
    this.socket.disconnect();
    this.setState(final);
  }

  /** Timers stalled: the machine slept or the tab was frozen, so an "open" socket may be dead. */
  private onStale(): void {
    if (!this.active) return;
    // Hidden tabs get their timers throttled, which looks like a stall: decide when visible again.
    if (isPageHidden()) {
      this.staleWhileHidden = true;
      return;
    }
    this.staleWhileHidden = false;
    if (this.current === "connected") this.forceReconnect();
    else this.reconnectNow();
  }

  /** An acknowledged ping on the live socket; no answer in time means it is dead: replace it. */
  private verifyConnection(): void {
    if (this.checking) return;
    this.checking = true;
    const socket = this.socket.timeout(this.config.wakeCheckTimeoutMs);
    const ping = socket.emitWithAck as (event: string, payload: unknown) => Promise<unknown>;
    const attempt = this.attemptId;
    ping.call(socket, "echo", null).then(
      () => {
        this.checking = false;
      },
      () => {
        this.checking = false;
        // Still the connection we checked: it is dead though it looks open.
        if (this.active && attempt === this.attemptId && this.current === "connected") this.forceReconnect();
      },
    );
  }

  private forceReconnect(): void {
    this.attemptId += 1;
    this.recorder.onDisconnect();
    this.socket.disconnect();
    this.setState("reconnecting");
    this.open();
  }

  private onRecovery(payload: RecoveryPayload): void {
    this.recorder.onRecovery(payload);
    // The missed events are gone for good: resume from now, or the next reconnect fails the same way.
    this.offsets.onRecovery(payload);
  }

  /** Runs before every listener of an incoming event: tracks offsets and flags duplicates. */
  private track(event: string, payload: unknown): void {
    this.duplicate = false;
    if (event === ServerEvent.Welcome) {
      this.onWelcome(payload as WelcomePayload);
      return;
    }
    this.duplicate = this.offsets.isDuplicate(payload);
  }

  /**
   * `welcome` carries each stream's current offset. It is adopted only where the
   * client has none (first connect): on a reconnect the replay is still to come.
   */
  private onWelcome(welcome: WelcomePayload): void {
    if (typeof welcome.ticket === "string" && typeof welcome.ticketExpiresAt === "number")
      this.ticket = { ticket: welcome.ticket, expiresAt: welcome.ticketExpiresAt };
    this.offsets.onWelcome(welcome);
  }

  private removeAppListeners(event: keyof ServerToClientEvents): void {
    const internal = this.internal.get(event) ?? [];
    for (const listener of this.socket.listeners(event)) {
      if (!internal.includes(listener as AnyListener)) this.loose.off(event, listener as AnyListener);
    }
  }

  /** Listens for the client's own needs; such listeners survive `client.off(event)`. */
  private listenInternal(event: keyof ServerToClientEvents, listener: AnyListener): void {
    this.internal.set(event, [...(this.internal.get(event) ?? []), listener]);
    this.loose.on(event, listener);
  }

  private clearRetryTimer(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private setState(state: TetherState): void {
    if (state === this.current) return;
    this.current = state;
    this.events.emit("state", state);
  }
}

/** Built-in client → server events, whose acknowledgement is not an EventAck. */
const BUILT_IN_EMITS: Readonly<Record<keyof ClientToServerEvents, true>> = {
  echo: true,
  "room:join": true,
  "room:leave": true,
  "room:members": true,
};

/** An app event's EventAck: its result, or its error code thrown as a TetherClientError. */
function unwrapAck(event: string, reply: unknown): unknown {
  const ack = reply as Partial<EventAck> | null;
  if (ack?.ok === true) return ack.result;
  const error = ack?.ok === false ? ack.error : undefined;
  throw new TetherClientError({
    code: isErrorCode(error?.code) ? error.code : ErrorCode.Internal,
    message: typeof error?.message === "string" ? error.message : `Malformed acknowledgement of "${event}"`,
  });
}

function isOwnEvent(event: string): event is keyof ClientOwnEvents {
  return OWN_EVENTS.has(event);
}

/** A refused room request (`{ ok: false, error }`, or the inbound guard's `{ error }`) as a TetherClientError. */
function ackError(event: string, result: unknown): TetherClientError {
  const error = (result as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return new TetherClientError({
    code: isErrorCode(error?.code) ? error.code : ClientErrorCode.BadResponse,
    message: typeof error?.message === "string" ? error.message : `"${event}" was refused`,
  });
}

function asClientError(err: unknown): TetherClientError {
  if (err instanceof TetherClientError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // A host's getToken says its session is gone with a 401 (see TetherClientOptions.getToken).
  if (typeof err === "object" && err !== null && (err as { status?: unknown }).status === 401)
    return new TetherClientError({ code: ErrorCode.SessionRequired, message, status: 401, cause: err });
  return new TetherClientError({ code: ClientErrorCode.Network, message, cause: err });
}
