import { ErrorCode } from "@tether/shared";
import type { Logger } from "pino";
import { TetherError } from "../errors.js";
import type { Metrics } from "../observability/metrics.js";
import type { SocketLifetime } from "./socket-lifetime.js";
import type { TetherSocket } from "./types.js";

/** A refused client's hint while full: spread over this span, so they do not all come back at once. */
const RETRY_AFTER_MS = { min: 1_000, max: 10_000 } as const;
/** At most one "full" log line per this long while the instance stays full. */
const FULL_LOG_INTERVAL_MS = 60_000;

/**
 * The instance's socket cap (`TETHER_MAX_SOCKETS`, by default what the fd limit and the
 * memory budget allow): a handshake past it is refused with UNAVAILABLE and a spread
 * `retryAfterMs` before any store work, never with a silent close. While full, the agent
 * check answers weight 0 (`full`), `tether_capacity_full{limit="sockets"}` is 1, and one
 * line a minute says so. Sockets mid-handshake count: a burst cannot overshoot the cap.
 */
export class SocketCapacity {
  private held = 0;
  private fullSince: number | undefined;
  private loggedAt = Number.NEGATIVE_INFINITY;
  private readonly slot: number;

  constructor(
    readonly max: number,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly lifetime: SocketLifetime,
    private readonly random: () => number = Math.random,
  ) {
    metrics.socketCapacity.set(max);
    this.slot = lifetime.part({ release: () => this.release() });
  }

  /** Sockets held: connected, or past this check in their handshake. */
  get sockets(): number {
    return this.held;
  }

  /** True while new handshakes are refused. */
  get full(): boolean {
    return this.held >= this.max;
  }

  /** Takes a slot for the socket until it leaves, or throws UNAVAILABLE with `retryAfterMs` when full. */
  take(socket: TetherSocket): void {
    if (this.full) {
      this.refused();
      const error = new TetherError(ErrorCode.Unavailable, "This instance is full: retry after the hinted delay.");
      error.retryAfterMs = Math.round(RETRY_AFTER_MS.min + this.random() * (RETRY_AFTER_MS.max - RETRY_AFTER_MS.min));
      throw error;
    }
    this.held += 1;
    if (this.full) this.filled();
    this.lifetime.took(socket, this.slot);
  }

  private release(): void {
    this.held -= 1;
    if (!this.full && this.fullSince !== undefined) this.emptied();
  }

  private filled(): void {
    this.fullSince ??= Date.now();
    this.metrics.capacityFull.set({ limit: "sockets" }, 1);
    this.log();
  }

  private refused(): void {
    this.metrics.admissionRefusals.inc({ reason: "full" });
    this.log();
  }

  private emptied(): void {
    this.fullSince = undefined;
    this.metrics.capacityFull.set({ limit: "sockets" }, 0);
  }

  private log(): void {
    if (Date.now() - this.loggedAt < FULL_LOG_INTERVAL_MS) return;
    this.loggedAt = Date.now();
    this.logger.warn(
      { sockets: this.held, cap: this.max },
      "socket cap reached: new handshakes get UNAVAILABLE with a retry hint, the agent check answers 0% (TETHER_MAX_SOCKETS)",
    );
  }
}
