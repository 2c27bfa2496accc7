import type { RecoveryPayload } from "@tether/shared";

/** How a tab reaches the server. */
export type SharingMode =
  /** Its own socket (no sharing: opted out, or the browser has neither SharedWorker nor Web Locks). */
  | "tab"
  /** The socket of a SharedWorker, shared by every tab of the origin. */
  | "worker"
  /** Its own socket, which also serves the origin's other tabs. */
  | "leader"
  /** The leader tab's socket. */
  | "follower";

/** Reliability figures of a connection, as `client.stats()` reports them. */
export interface ClientStats {
  /** How this tab reaches the server. */
  mode: SharingMode;
  /** Tabs served by the connection (1 without sharing). */
  tabs: number;
  /** Connections established, the first included. */
  connects: number;
  /** Established connections that were lost. */
  disconnects: number;
  /** Time to reconnect of the latest reconnects (ms, oldest first, at most {@link STATS_SAMPLES}): from losing the connection to the next `connect`. */
  reconnectTimesMs: number[];
  /** Events replayed by the latest recoveries that succeeded (oldest first, at most {@link STATS_SAMPLES}). */
  replaySizes: number[];
  /** Recoveries after a reconnect, by outcome; `failed` by reason (`trimmed`, `reset`, `invalid`, or `unknown`). */
  recoveries: { recovered: number; failed: Record<string, number> };
  /** Epoch ms when the pending retry fires; undefined when no retry is pending. */
  nextRetryAt: number | undefined;
  /** Epoch ms since when the connection has been down (undefined while connected, or before the first connect). */
  awaySince: number | undefined;
}

/** How many recent samples `stats()` keeps per figure. */
export const STATS_SAMPLES = 50;

/** The connection's own figures (everything in {@link ClientStats} but the sharing fields). */
export type ConnectionStats = Omit<ClientStats, "mode" | "tabs">;

/** Counts what a connection goes through; `snapshot()` is what `stats()` returns. */
export class StatsRecorder {
  private connects = 0;
  private disconnects = 0;
  private readonly reconnectTimesMs: number[] = [];
  private readonly replaySizes: number[] = [];
  private recovered = 0;
  private readonly failed: Record<string, number> = {};
  /** When the connection was lost (or, after a reload, when the page last had it). */
  awaySince: number | undefined;
  nextRetryAt: number | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** How long the connection has been down, for the handshake's `awayMs`. */
  awayMs(): number | undefined {
    return this.awaySince === undefined ? undefined : Math.max(0, this.now() - this.awaySince);
  }

  onConnect(): void {
    this.connects += 1;
    this.nextRetryAt = undefined;
    const away = this.awayMs();
    if (away !== undefined) push(this.reconnectTimesMs, away);
    this.awaySince = undefined;
  }

  onDisconnect(): void {
    this.disconnects += 1;
    this.awaySince ??= this.now();
  }

  onRecovery(payload: RecoveryPayload): void {
    if (payload.recovered) {
      this.recovered += 1;
      push(this.replaySizes, payload.missed);
    } else {
      const reason = payload.reason ?? "unknown";
      this.failed[reason] = (this.failed[reason] ?? 0) + 1;
    }
  }

  snapshot(): ConnectionStats {
    return {
      connects: this.connects,
      disconnects: this.disconnects,
      reconnectTimesMs: [...this.reconnectTimesMs],
      replaySizes: [...this.replaySizes],
      recoveries: { recovered: this.recovered, failed: { ...this.failed } },
      nextRetryAt: this.nextRetryAt,
      awaySince: this.awaySince,
    };
  }
}

function push(samples: number[], value: number): void {
  samples.push(value);
  if (samples.length > STATS_SAMPLES) samples.shift();
}
