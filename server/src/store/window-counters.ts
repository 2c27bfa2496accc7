import type { LimitCount, LimitCounter } from "./types.js";

/** How often, at most, counters whose window has ended are dropped (checked as counts come in). */
const SWEEP_INTERVAL_MS = 30_000;

interface Window {
  count: number;
  /** Epoch ms. */
  endsAt: number;
}

/**
 * Rate-limit counters in process: the twin of the Redis script CHARGE (a fixed
 * window of `windowSeconds` from a key's first action), for embedded mode and for
 * an instance's own first gate (`RateLimits.screen`). Synchronous, so a count is
 * atomic; no timers: ended windows are dropped as new counts come in.
 */
export class WindowCounters {
  private readonly windows = new Map<string, Window>();
  private nextSweepAt: number;

  constructor(private readonly now: () => number = Date.now) {
    this.nextSweepAt = now() + SWEEP_INTERVAL_MS;
  }

  /** Counts one action; the ms until the window ends when the count is past the points, else 0. */
  charge(limit: LimitCounter): number {
    const now = this.now();
    if (now >= this.nextSweepAt) this.sweep(now);
    let window = this.live(limit.key, now);
    if (window === undefined) {
      window = { count: 0, endsAt: now + limit.windowSeconds * 1000 };
      this.windows.set(limit.key, window);
    }
    window.count += 1;
    return window.count <= limit.points ? 0 : Math.max(1, window.endsAt - now);
  }

  /** The key's count in its current window, counting nothing; undefined when there is none. */
  peek(key: string): LimitCount | undefined {
    const now = this.now();
    const window = this.live(key, now);
    return window && { count: window.count, msLeft: window.endsAt - now };
  }

  reset(key: string): void {
    this.windows.delete(key);
  }

  private live(key: string, now: number): Window | undefined {
    const window = this.windows.get(key);
    if (window === undefined || window.endsAt > now) return window;
    this.windows.delete(key);
    return undefined;
  }

  private sweep(now: number): void {
    for (const [key, window] of this.windows) if (window.endsAt <= now) this.windows.delete(key);
    this.nextSweepAt = now + SWEEP_INTERVAL_MS;
  }
}
