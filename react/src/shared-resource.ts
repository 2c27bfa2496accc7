/** Runs `task` later; returns the function that cancels it. */
export type Schedule = (task: () => void) => () => void;

/**
 * After the current task: React's StrictMode unmounts and mounts again within one
 * commit, synchronously, so a release scheduled here is always cancelled by that
 * second mount, while a real unmount lets it run.
 */
export const nextTask: Schedule = (task) => {
  const timer = setTimeout(task, 0);
  return () => clearTimeout(timer);
};

/** One holder's claim on a shared value; `release` is idempotent. */
export interface Lease<V> {
  readonly value: V;
  release(): void;
}

interface Entry<V> {
  value: V;
  holders: number;
  /** Cancels the pending close, while one is scheduled. */
  cancelClose: (() => void) | undefined;
}

/**
 * Values opened on first use and closed when their last holder lets go, reference
 * counted per key, with the close deferred by `schedule`: a holder that lets go and
 * comes back at once (StrictMode's double mount) finds the same value, opened once
 * and never closed in between.
 */
export class SharedResource<K, V, A = undefined> {
  private readonly entries = new Map<K, Entry<V>>();

  constructor(
    private readonly open: (key: K, arg: A) => V,
    private readonly close: (value: V, key: K) => void,
    private readonly schedule: Schedule = nextTask,
  ) {}

  /** Takes a hold on `key`'s value, opening it (with `arg`) when nobody holds it. */
  acquire(key: K, arg: A): Lease<V> {
    let entry = this.entries.get(key);
    if (entry) {
      entry.cancelClose?.();
      entry.cancelClose = undefined;
    } else {
      entry = { value: this.open(key, arg), holders: 0, cancelClose: undefined };
      this.entries.set(key, entry);
    }
    entry.holders += 1;
    const held = entry;
    let released = false;
    return {
      value: held.value,
      release: () => {
        if (released) return;
        released = true;
        // Forgotten meanwhile (the value ended on its own): nothing of ours to close.
        if (this.entries.get(key) !== held) return;
        held.holders -= 1;
        if (held.holders > 0) return;
        held.cancelClose = this.schedule(() => {
          held.cancelClose = undefined;
          if (this.entries.get(key) !== held || held.holders > 0) return;
          this.entries.delete(key);
          this.close(held.value, key);
        });
      },
    };
  }

  /** How many hold `key`'s value now (0 while its close is pending or when none is open). */
  holders(key: K): number {
    return this.entries.get(key)?.holders ?? 0;
  }

  /** Drops `key`'s value without closing it, if it is still `value` (it ended on its own). */
  forget(key: K, value: V): void {
    const entry = this.entries.get(key);
    if (entry?.value !== value) return;
    entry.cancelClose?.();
    this.entries.delete(key);
  }
}
