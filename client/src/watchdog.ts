export interface StaleWatchOptions {
  /** A gap between ticks longer than this means the process or tab was asleep or frozen. */
  staleAfterMs: number;
  onStale: (gapMs: number) => void;
  now?: () => number;
}

/** A running stale check; `check()` also runs it on demand (e.g. when a tab becomes visible). */
export interface StaleWatch {
  /** Measures the gap since the last tick, calls `onStale` if too long; returns whether it did. */
  check(): boolean;
  stop(): void;
}

/**
 * Detects sleep and frozen tabs: timers do not fire while the machine sleeps or the
 * tab is frozen, so a tick that comes much later than scheduled reveals it. The
 * connection may then look open while its TCP connection is long dead.
 */
export function startStaleWatch(options: StaleWatchOptions): StaleWatch {
  const now = options.now ?? Date.now;
  // Tick well inside the threshold, so ordinary timer lateness never looks like sleep.
  const intervalMs = Math.min(5_000, Math.max(50, Math.floor(options.staleAfterMs / 3)));
  let last = now();
  const check = (): boolean => {
    const current = now();
    const gap = current - last;
    last = current;
    if (gap <= options.staleAfterMs) return false;
    options.onStale(gap);
    return true;
  };
  const timer = setInterval(check, intervalMs);
  // Never keep a Node process alive just for this check.
  if (typeof timer === "object" && timer !== null && "unref" in timer) timer.unref();
  return { check, stop: () => clearInterval(timer) };
}
