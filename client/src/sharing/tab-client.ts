import {
  type LoginResponse,
  type Offset,
  type RecoveryPayload,
  type RoomMember,
  type RoomRevokedPayload,
  ServerEvent,
  type SessionResponse,
  type TetherEvents,
  type WelcomePayload,
} from "@tether/shared";
import { watchBrowserWake } from "../browser.js";
import { Emitter } from "../emitter.js";
import { ClientErrorCode, TetherClientError } from "../errors.js";
import type { LoginCredentials, TetherHttp } from "../http.js";
import { type OffsetBook, USER_STREAM } from "../offset-book.js";
import type { ClientStats, ConnectionStats, SharingMode } from "../stats.js";
import type {
  EmittableArgs,
  EmittableEvent,
  EmittableResult,
  RoomJoined,
  TetherClient,
  TetherClientEvents,
  TetherSocket,
  TetherState,
} from "../types.js";
import { fromWireError, type HubMessage, NO_REPLY, type RequestOp, randomId, type TabMessage } from "./protocol.js";

/** How a tab reaches the hub: a SharedWorker's port, or the leader election's channel. */
export interface TabLink {
  send(message: TabMessage): void;
  /** How this tab is served right now. */
  mode(): SharingMode;
  /** The socket, when this tab owns it (the leader). */
  socket(): TetherSocket | undefined;
}

type AnyListener = (...args: unknown[]) => void;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

const NO_STATS: ConnectionStats = {
  connects: 0,
  disconnects: 0,
  reconnectTimesMs: [],
  replaySizes: [],
  recoveries: { recovered: 0, failed: {} },
  nextRetryAt: undefined,
  awaySince: undefined,
};

/**
 * A tab's client when tabs share one connection: the same API as a client with a
 * socket of its own, served by the hub. The tab keeps its own offsets (in its
 * `sessionStorage`), so it filters duplicates and resumes from what it delivered,
 * whoever holds the socket.
 */
export class SharedTabClient implements TetherClient {
  readonly tab = randomId();
  private link: TabLink | undefined;
  private readonly events = new Emitter<Record<string, AnyListener>>();
  private wants = false;
  /** The state while not wanting the connection: after `disconnect`, or the hub's stop. */
  private idleState: TetherState = "closed";
  private hub: string | undefined;
  private hubState: TetherState = "closed";
  private hubStats: ConnectionStats = NO_STATS;
  private tabs = 1;
  private shown: TetherState = "closed";
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private unwatchBrowser: (() => void) | undefined;

  constructor(
    private readonly http: TetherHttp,
    private readonly offsets: OffsetBook,
  ) {}

  /** Serve this tab through `link` (again, after a fallback): the hub learns the tab's state. */
  attach(link: TabLink): void {
    this.link = link;
    this.sendAttach();
  }

  /** What the tab tells a hub it has not met: whether it wants the connection, its offsets and rooms. */
  private attachMessage(): Extract<TabMessage, { kind: "attach" }> {
    return {
      kind: "attach",
      tab: this.tab,
      wants: this.wants,
      offsets: this.offsets.all(),
      rooms: Object.keys(this.offsets.rooms()),
    };
  }

  /** A message from the hub. */
  receive(message: HubMessage): void {
    if (message.kind === "hello") {
      // A new hub (the first, or the next leader after the last one's tab closed): requests
      // in flight to the old one are lost; tell the new one who we are.
      if (message.hub !== this.hub) this.failPending();
      this.hub = message.hub;
      this.sendAttach();
      return;
    }
    // The first word from a hub that was there before us; anything from an older hub is stale.
    this.hub ??= message.hub;
    if (message.hub !== this.hub) return;
    switch (message.kind) {
      case "status":
        this.hubState = message.state;
        this.hubStats = message.stats;
        this.tabs = message.tabs;
        if (message.stopped && this.wants) this.stop(message.state);
        this.showState();
        break;
      case "event":
        this.dispatch(message.event, message.args);
        break;
      case "error":
        if (this.wants) this.events.emit("error", fromWireError(message.error));
        break;
      case "reply":
        this.settle(message.id, message.value, message.error && fromWireError(message.error));
        break;
      case "ticket":
        break;
    }
  }

  get state(): TetherState {
    return this.shown;
  }

  get lastOffset(): Offset | undefined {
    return this.offsets.get(USER_STREAM);
  }

  get roomOffsets(): Readonly<Record<string, Offset>> {
    return this.offsets.rooms();
  }

  get socket(): TetherSocket {
    const socket = this.link?.socket();
    if (socket) return socket;
    throw new TetherClientError({
      code: ClientErrorCode.SharedConnection,
      message: "This tab shares another's connection: it has no socket of its own (use client.on and client.emit)",
    });
  }

  stats(): ClientStats {
    return { mode: this.link?.mode() ?? "tab", tabs: this.tabs, ...this.hubStats };
  }

  login(credentials: LoginCredentials): Promise<LoginResponse> {
    return this.http.login(credentials);
  }

  async logout(): Promise<void> {
    this.offsets.clear();
    this.disconnect();
    await this.http.logout();
  }

  session(): Promise<SessionResponse> {
    return this.http.session();
  }

  connect(): void {
    if (this.wants) return;
    this.wants = true;
    this.unwatchBrowser = watchBrowserWake(() => this.fire("wake", []));
    this.showState();
    this.send({ kind: "connect", tab: this.tab });
  }

  disconnect(): void {
    if (!this.wants) return;
    this.stop("closed");
    this.send({ kind: "disconnect", tab: this.tab });
  }

  close(): void {
    this.disconnect();
  }

  reconnectNow(): void {
    if (this.wants) this.fire("reconnectNow", []);
  }

  on<E extends keyof TetherClientEvents>(event: E, listener: TetherClientEvents[E]): this {
    this.events.on(event, listener as unknown as AnyListener);
    return this;
  }

  once<E extends keyof TetherClientEvents>(event: E, listener: TetherClientEvents[E]): this {
    this.events.once(event, listener as unknown as AnyListener);
    return this;
  }

  off<E extends keyof TetherClientEvents>(event: E, listener?: TetherClientEvents[E]): this {
    this.events.off(event, listener as unknown as AnyListener | undefined);
    return this;
  }

  emitWithAck<K extends EmittableEvent<TetherEvents>>(
    event: K,
    ...args: EmittableArgs<TetherEvents, K>
  ): Promise<EmittableResult<TetherEvents, K>> {
    return this.request("emitWithAck", [event, ...args], event) as Promise<EmittableResult<TetherEvents, K>>;
  }

  emit(event: string, payload: unknown): void {
    this.assertActive(event);
    this.fire("emit", [event, payload]);
  }

  echo(payload: unknown, timeoutMs?: number): Promise<unknown> {
    return this.request("echo", [payload, timeoutMs], "echo");
  }

  async join(room: string, options: { offset?: Offset } = {}): Promise<RoomJoined> {
    const joined = (await this.request(
      "join",
      [room, options.offset ?? this.offsets.get(room)],
      "room:join",
    )) as RoomJoined;
    this.offsets.advance(room, joined.offset);
    return joined;
  }

  async leave(room: string): Promise<void> {
    this.offsets.forget(room);
    await this.request("leave", [room], "room:leave");
  }

  members(room: string): Promise<RoomMember[]> {
    return this.request("members", [room], "room:members") as Promise<RoomMember[]>;
  }

  /** Delivers a forwarded event once: a replay or a repeat of what this tab delivered is skipped. */
  private dispatch(event: string, args: unknown[]): void {
    const payload = args[0];
    let duplicate = false;
    if (event === ServerEvent.Welcome) this.offsets.onWelcome(payload as WelcomePayload);
    else duplicate = this.offsets.isDuplicate(payload);
    if (event === ServerEvent.Recovery) this.offsets.onRecovery(payload as RecoveryPayload);
    if (event === ServerEvent.RoomRevoked) this.offsets.forget((payload as RoomRevokedPayload).room);
    if (event === ServerEvent.SessionEnded && this.wants) this.stop("unauthenticated");
    if (!duplicate) this.events.emit(event, ...args);
  }

  private stop(state: TetherState): void {
    this.wants = false;
    this.idleState = state === "unauthenticated" ? "unauthenticated" : "closed";
    this.unwatchBrowser?.();
    this.unwatchBrowser = undefined;
    this.failPending();
    this.showState();
  }

  private showState(): void {
    // While the hub is not yet up for this tab, the tab is connecting.
    const hubState = this.hubState === "closed" || this.hubState === "unauthenticated" ? "connecting" : this.hubState;
    const state = this.wants ? hubState : this.idleState;
    if (state === this.shown) return;
    this.shown = state;
    this.events.emit("state", state);
  }

  private assertActive(event: string): void {
    if (!this.wants)
      throw new TetherClientError({
        code: ClientErrorCode.NotConnected,
        message: `Cannot emit "${event}": the client is ${this.shown}`,
      });
  }

  private request(op: RequestOp, args: unknown[], event: string): Promise<unknown> {
    this.assertActive(event);
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.send({ kind: "request", tab: this.tab, id, op, args });
    });
  }

  /** A request whose answer nobody waits for. */
  private fire(op: RequestOp, args: unknown[]): void {
    this.send({ kind: "request", tab: this.tab, id: NO_REPLY, op, args });
  }

  private settle(id: number, value: unknown, error: TetherClientError | undefined): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    if (error) pending.reject(error);
    else pending.resolve(value);
  }

  private failPending(): void {
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.reject(
        new TetherClientError({
          code: ClientErrorCode.Disconnected,
          message: "The shared connection changed hands before the request was answered",
        }),
      );
    }
  }

  private sendAttach(): void {
    this.send(this.attachMessage());
  }

  private send(message: TabMessage): void {
    this.link?.send(message);
  }
}
