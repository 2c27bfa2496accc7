import { type Offset, type RecoveryPayload, ServerEvent, type TicketPayload } from "@tether/shared";
import { io, type ManagerOptions, type SocketOptions } from "socket.io-client";
import { Backoff } from "../backoff.js";
import { classifyFailure, errorFromConnectError } from "../classify.js";
import type { ClientConfig } from "../config.js";
import { ClientErrorCode, TetherClientError } from "../errors.js";
import { ClientFacade } from "../facade.js";
import { OffsetBook } from "../offset-book.js";
import { type ClientStats, StatsRecorder } from "../stats.js";
import type { TetherSocket } from "../types.js";
import { Credentials, type HandshakeCredential, handshakeAuth, ticketIn } from "./credentials.js";
import { SocketRequests } from "./requests.js";
import { WakeChecks } from "./wake.js";

/**
 * A client with a socket of its own, and the connection state machine that keeps it
 * up. socket.io-client's reconnection is off: this class decides when to retry
 * (backoff with jitter at the cap), and its `auth` callback presents fresh
 * credentials before every connect.
 */
export class SocketClient extends ClientFacade {
  readonly socket: TetherSocket;
  protected readonly requests: SocketRequests;
  private readonly backoff: Backoff;
  private readonly credentials: Credentials;
  private readonly wakeChecks: WakeChecks;
  private readonly recorder = new StatsRecorder();
  private everConnected = false;
  /** Bumped whenever an attempt ends or is abandoned, so late token responses are dropped. */
  private attemptId = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Streams were moved back after the handshake in flight was sent: it resumes too late, so connect again. */
  private rewoundInFlight = false;

  constructor(config: ClientConfig) {
    super(config.http, new OffsetBook(config.offsetStore), {
      retry: { baseMs: config.reconnectBaseDelayMs, maxMs: config.reconnectMaxDelayMs, random: config.random },
      log: config.log,
    });
    // Offsets restored after a reload: the page was away since it last saved them.
    this.recorder.awaySince = this.offsets.restoredAt;
    this.backoff = new Backoff({
      baseMs: config.reconnectBaseDelayMs,
      maxMs: config.reconnectMaxDelayMs,
      random: config.random,
    });
    this.credentials = new Credentials(config);
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
    this.requests = new SocketRequests(this.socket, config.ackTimeoutMs);
    this.wakeChecks = new WakeChecks(
      {
        socket: this.socket,
        isActive: () => this.active,
        isConnected: () => this.state === "connected",
        attempt: () => this.attemptId,
        replaceSocket: () => this.forceReconnect(),
        retryNow: () => this.reconnectNow(),
      },
      config,
    );
    this.socket.on("connect", () => this.onConnect());
    this.socket.on("connect_error", (err) => this.onConnectError(err));
    this.socket.on("disconnect", (reason) => this.onDisconnect(reason));
    // Any-listeners run before the socket's own: every event is tracked before anyone else sees it.
    this.socket.onAny((event: string, ...args: unknown[]) => this.deliver(event, args));
  }

  /** Adopts a resume ticket pushed to another tab's connection (a new leader's first reconnect). */
  adoptTicket(ticket: TicketPayload): void {
    this.credentials.adopt(ticket);
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
    if (this.active && this.state === "connected") this.forceReconnect();
    // A handshake already sent asks for the newer offsets: once it connects, connect again from these.
    else if (this.active) this.rewoundInFlight = true;
  }

  connect(): this {
    if (this.active) return this;
    this.active = true;
    this.everConnected = false;
    this.backoff.reset();
    this.setState("connecting");
    this.wakeChecks.start();
    this.open();
    return this;
  }

  disconnect(): void {
    this.stop("closed");
  }

  reconnectNow(): void {
    // Without a pending timer an attempt is already under way (token fetch or handshake).
    if (!this.active || this.state === "connected" || this.retryTimer === undefined) return;
    this.open();
  }

  /**
   * The page woke up (back online, visible again, restored from the back/forward
   * cache): a pending retry runs now, and a socket that looks connected must answer
   * an acknowledged ping within `wakeCheckTimeoutMs`, or it is replaced at once.
   */
  wake(): void {
    this.wakeChecks.wake();
  }

  /** A server event: the ticket it carries is kept for the next handshake, a recovery counted. */
  protected override received(event: string, payload: unknown): void {
    const ticket = ticketIn(event, payload);
    if (ticket) this.credentials.adopt(ticket);
    if (event === ServerEvent.Recovery) this.recorder.onRecovery(payload as RecoveryPayload);
  }

  /**
   * Socket.IO calls this before every connect: present the resume ticket the
   * server pushed (once), or the session cookie, or fetch a fresh token; never
   * reuse a ticket or a token.
   */
  private authorize(cb: (data: object) => void): void {
    const id = this.attemptId;
    const send = (credential: HandshakeCredential) => {
      this.rewoundInFlight = false;
      cb(handshakeAuth(credential, this.offsets, this.recorder.awayMs()));
    };
    const withoutRequest = this.credentials.take();
    if (withoutRequest !== undefined) {
      send(withoutRequest);
      return;
    }
    this.credentials.fetchToken().then(
      ({ token }) => {
        if (id === this.attemptId && this.active) send({ token });
      },
      (error: TetherClientError) => {
        if (id !== this.attemptId || !this.active) return;
        // Abort this attempt rather than handshake with a bad token.
        this.socket.disconnect();
        this.fail(error);
      },
    );
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
    this.credentials.keepUnspent(error);
    // A refused ticket or cookie: fetch a token now, no backoff.
    if (this.credentials.refusedWithoutToken(error)) this.open();
    else this.fail(error);
  }

  private onDisconnect(reason: string): void {
    if (!this.active || reason === "io client disconnect") return;
    this.recorder.onDisconnect();
    this.fail(new TetherClientError({ code: ClientErrorCode.Disconnected, message: `Connection lost: ${reason}` }));
  }

  private fail(error: TetherClientError): void {
    this.attemptId += 1;
    this.reportError(error);
    if (!this.active) return; // an "error" listener closed the client
    const action = classifyFailure(error);
    if (action.kind === "retry") this.scheduleRetry(action.hintMs);
    else {
      this.log.error("gave up reconnecting", { code: error.code, state: action.kind });
      this.stop(action.kind);
    }
  }

  private scheduleRetry(hintMs: number | undefined): void {
    this.clearRetryTimer();
    const attempt = this.backoff.attempts + 1;
    const delay = this.backoff.next(hintMs);
    this.log.info("reconnect scheduled", { attempt, delayMs: delay });
    this.recorder.nextRetryAt = Date.now() + delay;
    this.setState(this.everConnected ? "reconnecting" : "connecting");
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.open();
    }, delay);
  }

  protected stop(final: "closed" | "unauthenticated"): void {
    this.active = false;
    this.recorder.awaySince = undefined;
    this.credentials.drop();
    this.attemptId += 1;
    this.clearRetryTimer();
    this.wakeChecks.stop();
    this.socket.disconnect();
    this.setState(final);
  }

  private forceReconnect(): void {
    this.attemptId += 1;
    this.recorder.onDisconnect();
    this.socket.disconnect();
    this.setState("reconnecting");
    this.open();
  }

  private clearRetryTimer(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}
