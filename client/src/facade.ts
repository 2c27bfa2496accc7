import {
  ClientEvent,
  type LoginResponse,
  type Offset,
  type RoomMember,
  ServerEvent,
  type SessionResponse,
  type TetherEvents,
} from "@tether/shared";
import { Emitter } from "./emitter.js";
import { ClientErrorCode, TetherClientError } from "./errors.js";
import type { LoginCredentials, TetherHttp } from "./http.js";
import { type OffsetBook, USER_STREAM } from "./offset-book.js";
import type { ClientStats } from "./stats.js";
import type {
  EmittableArgs,
  EmittableEvent,
  EmittableResult,
  RoomJoined,
  TetherClient,
  TetherClientEvents,
  TetherSocket,
  TetherState,
} from "./types.js";

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
  join(room: string, offset: Offset | undefined): Promise<RoomJoined>;
  leave(room: string): Promise<void>;
  members(room: string): Promise<RoomMember[]>;
}

type Listener = (...args: unknown[]) => void;

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

  constructor(
    protected readonly http: TetherHttp,
    /** The last offset delivered per stream: what this client resumes from. */
    protected readonly offsets: OffsetBook,
  ) {}

  abstract stats(): ClientStats;
  abstract connect(): void;
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

  on<E extends keyof TetherClientEvents>(event: E, listener: TetherClientEvents[E]): this {
    this.listeners.on(event, listener as Listener);
    return this;
  }

  once<E extends keyof TetherClientEvents>(event: E, listener: TetherClientEvents[E]): this {
    this.listeners.once(event, listener as Listener);
    return this;
  }

  off<E extends keyof TetherClientEvents>(event: E, listener?: TetherClientEvents[E]): this {
    // Without a listener, all the app's listeners of the event go; the client's own handling is no listener.
    this.listeners.off(event, listener as Listener | undefined);
    return this;
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

  async join(room: string, options: { offset?: Offset | undefined } = {}): Promise<RoomJoined> {
    this.assertActive(ClientEvent.RoomJoin);
    const joined = await this.requests.join(room, options.offset ?? this.offsets.get(room));
    // Replayed events moved the offset already; the answer's is where the room stands after them.
    this.offsets.advance(room, joined.offset);
    return joined;
  }

  async leave(room: string): Promise<void> {
    // Forgotten at once: a reconnect from now on does not ask for it.
    this.offsets.forget(room);
    this.assertActive(ClientEvent.RoomLeave);
    await this.requests.leave(room);
  }

  async members(room: string): Promise<RoomMember[]> {
    this.assertActive(ClientEvent.RoomMembers);
    return this.requests.members(room);
  }

  /**
   * Every server event reaches the app through here, once: the offsets record it,
   * `received` sees it, a `session:ended` stops the client, and the app's listeners
   * run unless the event was delivered already (a replay or a repeat).
   */
  protected deliver(event: string, args: unknown[]): void {
    const payload = args[0];
    const duplicate = this.offsets.track(event, payload);
    this.received(event, payload);
    if (event === ServerEvent.SessionEnded && this.active) this.stop("unauthenticated");
    if (!duplicate) this.listeners.emit(event, ...args);
  }

  /** A server event, before the app's listeners see it: for what a transport records of its own. */
  protected received(_event: string, _payload: unknown): void {}

  protected setState(state: TetherState): void {
    if (state === this.current) return;
    this.current = state;
    this.listeners.emit("state", state);
  }

  /** A failed attempt or a lost connection, for the app's `error` listeners. */
  protected reportError(error: TetherClientError): void {
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
