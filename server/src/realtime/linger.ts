/**
 * Keeps a subscription for a while after its last socket here left, so a client
 * that comes back to this instance (a network blip, a reload, a woken tab, every
 * client of a restarted proxy) finds its stream and its session's topic still
 * subscribed: no SUNSUBSCRIBE now and SSUBSCRIBE a second later, and (for a
 * stream) no store read to learn that nothing was missed. A key taken again
 * before its time is simply forgotten here; one sweep timer serves every key.
 */
export class Linger<K> {
  /** Parked keys and when they were parked; in parking order (a key is taken out before it is parked again). */
  private readonly parked = new Map<K, number>();
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param lingerMs how long a key is kept after its last user left (0: not at all).
   * @param expire ends the key's subscription; called once per park that was not taken back.
   */
  constructor(
    private readonly lingerMs: number,
    private readonly expire: (key: K) => void,
  ) {}

  /** The key's last user left: it expires after `lingerMs` unless taken again (at once when lingering is off). */
  park(key: K): void {
    if (this.lingerMs <= 0) {
      this.expire(key);
      return;
    }
    this.parked.set(key, Date.now());
    this.timer ??= setInterval(() => this.sweep(), Math.max(100, this.lingerMs / 2)).unref();
  }

  /** A user came back: true when the key was parked (its subscription is still in place). */
  take(key: K): boolean {
    return this.parked.delete(key);
  }

  /** Forgets every parked key without expiring it (the subscriptions end with their connection). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.parked.clear();
  }

  private sweep(): void {
    const due = Date.now() - this.lingerMs;
    for (const [key, parkedAt] of this.parked) {
      if (parkedAt > due) break;
      this.parked.delete(key);
      this.expire(key);
    }
    if (this.parked.size === 0) this.stop();
  }
}
