import { ErrorCode, type HistoryRequest, type Offset, type PresenceData, type RoomMember } from "@tether/shared";
import { Backoff, type BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { ClientErrorCode, type TetherClientError } from "./errors.js";
import type { ClientLog } from "./logger.js";
import { assertPresenceFits } from "./presence-fits.js";
import type {
  HistoryOptions,
  HistoryPage,
  RoomAnyListener,
  RoomJoined,
  Subscription,
  SubscriptionEnd,
  SubscriptionOptions,
  SubscriptionState,
  Unsubscribe,
} from "./types.js";

type Listener = (...args: unknown[]) => void;

/**
 * The least wait after a RATE_LIMITED join: the server's event limits count per second,
 * and every refused event counts against the socket (too many and it is disconnected).
 */
export const RATE_LIMIT_PAUSE_MS = 1_000;
/** What `on` takes: any listener; the public type ({@link Subscription}) checks it against the event. */
type AnyListener = (...args: never[]) => void;

/** What a subscription asks of its client: requests that need the connection, and the room's offset. */
export interface SubscriptionHost {
  /** The client is active and connected: requests may be sent now. */
  ready(): boolean;
  /** Active (between `connect()` and a stop): a leave is worth sending. */
  active(): boolean;
  offsetOf(room: string): Offset | undefined;
  /** Joins, one subscription's join at a time, after any pause a rate limit asked for. */
  join(room: string, offset: Offset | undefined, presence: PresenceData | undefined): Promise<RoomJoined>;
  /** Holds every subscription's next join for `ms`: the socket was rate-limited. */
  pauseJoins(ms: number): void;
  leave(room: string): Promise<void>;
  /** Forgets the room's offset (a leave while not connected). */
  forget(room: string): void;
  members(room: string): Promise<RoomMember[]>;
  history(request: HistoryRequest): Promise<HistoryPage>;
  setPresence(room: string, data: PresenceData): Promise<void>;
  /** The subscription ended: the client drops it. */
  ended(subscription: RoomSubscription): void;
  readonly retry: BackoffOptions;
  readonly log: ClientLog;
}

/**
 * A room the app wants to be in, until it leaves or is refused: joined once the client
 * is connected, kept across reconnects (the handshake asks for it again with its last
 * offset, as for every room with an offset), joined again when a reconnect did not
 * bring it back, and retried with the connection's backoff after a transient refusal.
 */
export class RoomSubscription implements Subscription {
  private current: SubscriptionState = "subscribing";
  private readonly listeners = new Emitter<Record<string, Listener>>();
  /** `onAny` listeners: every server event of the room, with its name. */
  private readonly anyListeners = new Emitter<{ any: RoomAnyListener }>();
  private readonly backoff: Backoff;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** A join is in flight. */
  private joining = false;
  /** Where the first join resumes from, when the app gave it. */
  private startOffset: Offset | undefined;
  private presenceData: PresenceData | undefined;

  constructor(
    readonly room: string,
    options: SubscriptionOptions,
    private readonly host: SubscriptionHost,
  ) {
    this.startOffset = options.offset;
    this.presenceData = options.presence;
    this.backoff = new Backoff(host.retry);
  }

  /** Joins now if the client is connected; else the next connect does. */
  start(): void {
    if (this.host.ready()) this.join();
  }

  get state(): SubscriptionState {
    return this.current;
  }

  get offset(): Offset | undefined {
    return this.host.offsetOf(this.room);
  }

  on(event: string, listener: AnyListener): Unsubscribe {
    return this.listeners.on(event, listener as Listener);
  }

  once(event: string, listener: AnyListener): Unsubscribe {
    return this.listeners.once(event, listener as Listener);
  }

  off(event: string, listener?: AnyListener): void {
    this.listeners.off(event, listener as Listener | undefined);
  }

  onAny(listener: RoomAnyListener): Unsubscribe {
    return this.anyListeners.on("any", listener);
  }

  history(options: HistoryOptions = {}): Promise<HistoryPage> {
    return this.host.history({ ...options, room: this.room });
  }

  presence(): Promise<RoomMember[]> {
    return this.host.members(this.room);
  }

  async setPresence(data: PresenceData): Promise<void> {
    assertPresenceFits("presence:set", data);
    const previous = this.presenceData;
    this.presenceData = data;
    // Not in the room yet: the next join carries it.
    if (this.current !== "subscribed") return;
    try {
      await this.host.setPresence(this.room, data);
    } catch (error) {
      // Refused (past a bound): not kept, or every join after a reconnect would carry it and be refused too.
      if (!(error as TetherClientError).retryable && this.presenceData === data) this.presenceData = previous;
      throw error;
    }
  }

  async leave(): Promise<void> {
    if (this.current === "ended") return;
    this.end({ reason: "left" });
    if (this.host.active()) await this.host.leave(this.room);
    else this.host.forget(this.room);
  }

  // What the client tells its subscriptions.

  /**
   * The connection is up. A room the handshake asked for (it has an offset) is answered
   * by `welcome`; any other is joined now.
   */
  connected(): void {
    if (this.current === "subscribing" && this.host.offsetOf(this.room) === undefined) this.join();
  }

  /** `welcome`: where each room the handshake brought back stands. */
  welcomed(rooms: Readonly<Record<string, Offset>>): void {
    if (this.current === "ended" || this.joining) return;
    const offset = rooms[this.room];
    if (offset === undefined) {
      this.join();
      return;
    }
    this.subscribed(offset, undefined, true);
    // The handshake joins without presence data: set it again.
    this.resendPresence();
  }

  private resendPresence(): void {
    const data = this.presenceData;
    if (data === undefined) return;
    this.host.setPresence(this.room, data).catch((error: TetherClientError) => this.emit("error", error));
  }

  /** The connection was lost: the room is asked for again at the next connect. */
  lost(): void {
    if (this.current === "subscribed") this.setState("subscribing");
  }

  /** The server no longer allows the room (`room:revoked`, or the app's `client.leave`). */
  end(end: SubscriptionEnd): void {
    if (this.current === "ended") return;
    this.clearTimer();
    this.setState("ended");
    this.host.ended(this);
    if (end.reason === "refused") this.host.log.warn("subscription refused", { room: this.room, code: end.error.code });
    this.emit("ended", end);
  }

  /** A server event of this room (an app's, presence, recovery), for the subscription's listeners and `onAny`. */
  deliver(event: string, payload: unknown): void {
    this.listeners.emit(event, payload);
    this.anyListeners.emit("any", event, payload);
  }

  /** One of the subscription's own events (`state`, `subscribed`, `error`, `ended`): never `onAny`'s. */
  private emit(event: string, ...args: unknown[]): void {
    this.listeners.emit(event, ...args);
  }

  private join(): void {
    if (this.joining || this.current === "ended") return;
    this.clearTimer();
    this.joining = true;
    const offset = this.startOffset ?? this.host.offsetOf(this.room);
    const sent = this.presenceData;
    this.host.join(this.room, offset, sent).then(
      (joined) => {
        this.joining = false;
        this.startOffset = undefined;
        if (this.current === "ended") return;
        this.subscribed(joined.offset, joined.members, false);
        // Set while the join was on its way: the join carried the older data.
        if (this.presenceData !== sent && this.presenceData !== undefined) this.resendPresence();
      },
      (error: TetherClientError) => {
        this.joining = false;
        if (this.current === "ended") return;
        this.refused(error);
      },
    );
  }

  private subscribed(offset: Offset, members: RoomMember[] | undefined, resumed: boolean): void {
    this.backoff.reset();
    this.setState("subscribed");
    this.emit("subscribed", { room: this.room, offset, members, resumed });
  }

  /** A failed join: lost with the connection (joined at the next), transient (retried), or final. */
  private refused(error: TetherClientError): void {
    if (error.code === ClientErrorCode.Disconnected || error.code === ClientErrorCode.NotConnected) return;
    if (!error.retryable) {
      this.end({ reason: "refused", error });
      return;
    }
    this.emit("error", error);
    // A rate limit's window is a second; a refused event also counts against the socket's refusals.
    const floor = error.code === ErrorCode.RateLimited ? RATE_LIMIT_PAUSE_MS : 0;
    const delay = Math.max(error.retryAfterMs ?? floor, this.backoff.next());
    if (error.code === ErrorCode.RateLimited) this.host.pauseJoins(delay);
    this.host.log.info("subscription retry", { room: this.room, code: error.code, delayMs: delay });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.host.ready()) this.join();
    }, delay);
  }

  private setState(state: SubscriptionState): void {
    if (state === this.current) return;
    this.current = state;
    this.emit("state", state);
  }

  private clearTimer(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}
