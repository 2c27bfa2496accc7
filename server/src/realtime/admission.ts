import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks";
import { ErrorCode } from "@tether/shared";
import { TetherError } from "../errors.js";
import type { Metrics } from "../observability/metrics.js";

export interface AdmissionLimits {
  /**
   * Handshakes this instance takes per second, sustained, before it turns more away (0: no
   * limit). A burst of up to `BURST_SECONDS` of it is taken at once by an instance that was quiet.
   */
  handshakesPerSecond: number;
  /** Event-loop delay (p99 over the last second) past which handshakes are turned away (0: no limit). */
  maxEventLoopDelayMs: number;
}

/** How often the handshake rate and the event-loop delay are sampled. */
const WINDOW_MS = 1_000;
/**
 * The burst a quiet instance takes at full speed, in seconds of the handshake rate (a token
 * bucket this deep): the victims of a killed instance arrive within a second or two, and
 * turning away what the instance could have served at once only makes them wait out a hint.
 * Overload beyond it is the event-loop delay's to see.
 */
export const BURST_SECONDS = 2;
/** A refused client's hint: at least this long, and at most this long, before trying again. */
const RETRY_AFTER_MS = { min: 500, max: 15_000 } as const;

/**
 * Admission control under a reconnect storm: past a handshake rate or an
 * event-loop delay, handshakes are refused (UNAVAILABLE, retryable) before any
 * store work, each with its own `retryAfterMs` hint spread over the time the
 * backlog needs, so the refused come back as a ramp, not a second wave. The
 * load balancer hears the same pressure as a lower weight (`weight()`, for
 * HAProxy's agent check) — never as a failing readiness check, which in a storm
 * would mark every instance down at once.
 */
export class Admission {
  private readonly delay: IntervalHistogram | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Handshakes admitted in the current window, and the rate of the last whole one. */
  private admitted = 0;
  private lastRate = 0;
  /** Handshakes tried (admitted or not) in the current window and the last one: the backlog. */
  private attempts = 0;
  private lastAttempts = 0;
  private lastDelayMs = 0;
  /** The token bucket of the handshake rate: handshakes it may take now, and when it was last filled. */
  private tokens: number;
  private filledAt: number;

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly metrics: Metrics,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (limits.maxEventLoopDelayMs > 0) this.delay = monitorEventLoopDelay({ resolution: 10 });
    this.tokens = limits.handshakesPerSecond * BURST_SECONDS;
    this.filledAt = now();
  }

  start(): void {
    this.delay?.enable();
    this.timer ??= setInterval(() => this.roll(), WINDOW_MS).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.delay?.disable();
  }

  /** Call at the start of a handshake: throws UNAVAILABLE with a spread `retryAfterMs` when overloaded. */
  admit(): void {
    const { handshakesPerSecond, maxEventLoopDelayMs } = this.limits;
    this.attempts += 1;
    const overDelay = maxEventLoopDelayMs > 0 && this.lastDelayMs > maxEventLoopDelayMs;
    const overRate = !overDelay && handshakesPerSecond > 0 && !this.takeToken(handshakesPerSecond);
    if (!overRate && !overDelay) {
      this.admitted += 1;
      return;
    }
    this.metrics.admissionRefusals.inc({ reason: overRate ? "rate" : "delay" });
    const error = new TetherError(ErrorCode.Unavailable, "This instance is busy: retry after the hinted delay.");
    error.retryAfterMs = this.retryAfter();
    throw error;
  }

  /**
   * The agent-check answer: the share of its normal weight this instance should
   * get, lower the closer it is to its limits (at least 1%: still up).
   */
  weight(): number {
    const { handshakesPerSecond, maxEventLoopDelayMs } = this.limits;
    const rateLoad = handshakesPerSecond > 0 ? Math.max(this.lastRate, this.admitted) / handshakesPerSecond : 0;
    const delayLoad = maxEventLoopDelayMs > 0 ? this.lastDelayMs / maxEventLoopDelayMs : 0;
    const load = Math.max(rateLoad, delayLoad);
    return load < 0.5 ? 100 : Math.max(1, Math.round(100 * (1 - Math.min(1, load)) * 2));
  }

  /** Fills the bucket for the time since it was last filled (up to its depth), then takes one if it can. */
  private takeToken(perSecond: number): boolean {
    const now = this.now();
    this.tokens = Math.min(perSecond * BURST_SECONDS, this.tokens + ((now - this.filledAt) * perSecond) / 1_000);
    this.filledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Spread over the time the current backlog needs at the allowed rate, at least a window. */
  private retryAfter(): number {
    const { handshakesPerSecond } = this.limits;
    const tried = Math.max(this.lastAttempts, this.attempts);
    const backlogMs = handshakesPerSecond > 0 ? (tried / handshakesPerSecond) * WINDOW_MS : WINDOW_MS;
    const span = Math.min(RETRY_AFTER_MS.max, Math.max(WINDOW_MS, backlogMs));
    return Math.round(Math.max(RETRY_AFTER_MS.min, this.random() * span));
  }

  private roll(): void {
    this.lastRate = this.admitted;
    this.admitted = 0;
    this.lastAttempts = this.attempts;
    this.attempts = 0;
    if (this.delay) {
      this.lastDelayMs = this.delay.percentile(99) / 1e6;
      this.delay.reset();
    }
  }
}
