export interface BackoffOptions {
  /** Delay scale of the first retry, in ms. */
  baseMs: number;
  /** Cap of the exponential part, in ms. */
  maxMs: number;
  /** Uniform in [0, 1); injectable for tests. */
  random: () => number;
}

/**
 * Delay before retry number `attempt` (0-based): `min(max, base·2^attempt) × (0.5 + random·0.5)`.
 * Jitter is applied after the cap, so clients stuck at the cap still spread out instead of
 * all retrying in lockstep (socket.io-client's own backoff loses its jitter at the cap).
 */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const exponential = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt));
  const jitter = 0.5 + clamp01(options.random()) * 0.5;
  return Math.round(exponential * jitter);
}

/** The retry counter of one connection: `next()` after each failure, `reset()` after a success. */
export class Backoff {
  private attempt = 0;

  constructor(private readonly options: BackoffOptions) {}

  /** Failed attempts since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /**
   * The delay before the next retry; counts one more failed attempt. A server's hint
   * (`retryAfterMs`, `Retry-After`) replaces the exponential delay: the server knows its
   * backlog and spreads its hints over it, so waiting the longer of both would stretch the
   * ramp it planned (a refused client of a reconnect storm came back seconds after the rest).
   * Up to 20 % jitter is added, so whole-second `Retry-After`s do not return in lockstep.
   */
  next(hintMs?: number): number {
    const delay =
      hintMs === undefined
        ? backoffDelay(this.attempt, this.options)
        : Math.round(hintMs * (1 + clamp01(this.options.random()) * 0.2));
    this.attempt += 1;
    return delay;
  }

  reset(): void {
    this.attempt = 0;
  }
}

function clamp01(value: number): number {
  if (!Number.isFinite(value) || value < 0) return 0;
  return Math.min(value, 1);
}
