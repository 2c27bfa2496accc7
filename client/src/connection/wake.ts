import { isPageHidden, watchBrowserWake } from "../browser.js";
import type { TetherSocket } from "../types.js";
import { type StaleWatch, startStaleWatch } from "../watchdog.js";

export interface WakeOptions {
  /** Timers stalled longer than this: the machine slept or the tab froze. `0`: not watched. */
  staleAfterMs: number;
  /** How long a wake-up check waits for the server's answer before replacing the socket. */
  wakeCheckTimeoutMs: number;
  /** Listen to the page's own wake-ups (`online`, visible, `pageshow`); off where tabs report them instead. */
  watchWake: boolean;
}

/** What the wake checks see of the connection, and what they may ask of it. */
export interface WakeTarget {
  readonly socket: TetherSocket;
  /** The connection is wanted (between `connect()` and a stop). */
  isActive(): boolean;
  isConnected(): boolean;
  /** Changes whenever an attempt ends: an answer that comes after is about another socket. */
  attempt(): number;
  /** Replaces a socket that looks open, at once. */
  replaceSocket(): void;
  /** Runs a pending retry now. */
  retryNow(): void;
}

/**
 * Catches a connection that died unseen: timers that stalled (sleep, a frozen tab)
 * and the page waking up (back online, visible again, restored from the back/forward
 * cache). A socket that looks connected then must answer an acknowledged ping in
 * time or be replaced; one that is down retries at once.
 */
export class WakeChecks {
  private watch: StaleWatch | undefined;
  private unwatchBrowser: (() => void) | undefined;
  /** Timers stalled while the tab was hidden: decide once it is visible. */
  private staleWhileHidden = false;
  /** A wake-up check is waiting for the server's answer. */
  private checking = false;

  constructor(
    private readonly target: WakeTarget,
    private readonly options: WakeOptions,
  ) {}

  /** From `connect()` on. */
  start(): void {
    const { staleAfterMs, watchWake } = this.options;
    if (staleAfterMs > 0) this.watch = startStaleWatch({ staleAfterMs, onStale: () => this.onStale() });
    if (watchWake) this.unwatchBrowser = watchBrowserWake(() => this.wake());
  }

  stop(): void {
    this.watch?.stop();
    this.watch = undefined;
    this.unwatchBrowser?.();
    this.unwatchBrowser = undefined;
    this.staleWhileHidden = false;
  }

  /**
   * The page woke up: a pending retry runs now, and a socket that looks connected
   * must answer an acknowledged ping within `wakeCheckTimeoutMs`, or it is replaced at once.
   */
  wake(): void {
    if (!this.target.isActive()) return;
    const stalled = this.watch?.check() ?? false;
    if (!stalled && this.staleWhileHidden) this.onStale();
    if (this.target.isConnected()) this.verifyConnection();
    else this.target.retryNow();
  }

  /** Timers stalled: the machine slept or the tab was frozen, so an "open" socket may be dead. */
  private onStale(): void {
    if (!this.target.isActive()) return;
    // Hidden tabs get their timers throttled, which looks like a stall: decide when visible again.
    if (isPageHidden()) {
      this.staleWhileHidden = true;
      return;
    }
    this.staleWhileHidden = false;
    if (this.target.isConnected()) this.target.replaceSocket();
    else this.target.retryNow();
  }

  /** An acknowledged ping on the live socket; no answer in time means it is dead: replace it. */
  private verifyConnection(): void {
    if (this.checking) return;
    this.checking = true;
    const socket = this.target.socket.timeout(this.options.wakeCheckTimeoutMs);
    const ping = socket.emitWithAck as (event: string, payload: unknown) => Promise<unknown>;
    const attempt = this.target.attempt();
    ping.call(socket, "echo", null).then(
      () => {
        this.checking = false;
      },
      () => {
        this.checking = false;
        // Still the connection we checked: it is dead though it looks open.
        const { target } = this;
        if (target.isActive() && attempt === target.attempt() && target.isConnected()) target.replaceSocket();
      },
    );
  }
}
