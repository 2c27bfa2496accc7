import type { SessionEndReason } from "@tether/shared";
import type { Logger } from "pino";

/** First wait before a failed session-end broadcast is tried again; it doubles up to the cap. */
export const SESSION_END_FIRST_RETRY_MS = 100;

export interface SessionEndsOptions {
  /** Tells this instance's own sockets of the session, at once: no store involved. */
  endLocal(sid: string, reason: SessionEndReason): void;
  /** Tells every instance (the control channel); rejects while Redis is unreachable. */
  broadcast(sid: string, reason: SessionEndReason): Promise<void>;
  /** Longest wait between two tries (the session check interval: no end arrives later than a check would). */
  maxRetryDelayMs: number;
  logger: Logger;
}

/**
 * Ends sessions: this instance's sockets at once, every other instance's
 * through the control channel, tried again with backoff until the broadcast is
 * sent. A Redis blip delays a logout's reach; it never drops it.
 */
export class SessionEnds {
  /** Sessions whose broadcast is not sent yet → the pending retry, if one is scheduled. */
  private readonly pending = new Map<string, NodeJS.Timeout | undefined>();
  private stopped = false;

  constructor(private readonly options: SessionEndsOptions) {}

  /**
   * Ends the session. `news` is false when a broadcast for it was pending
   * already; `sent` settles after the first try (retries go on after a failure).
   */
  end(sid: string, reason: SessionEndReason): { news: boolean; sent: Promise<void> } {
    this.options.endLocal(sid, reason);
    if (this.stopped || this.pending.has(sid)) return { news: false, sent: Promise.resolve() };
    this.pending.set(sid, undefined);
    return { news: true, sent: this.attempt(sid, reason, SESSION_END_FIRST_RETRY_MS, 1) };
  }

  /** Broadcasts not sent yet. */
  get size(): number {
    return this.pending.size;
  }

  /** Drops the pending retries (the instance is closing). */
  stop(): void {
    this.stopped = true;
    for (const timer of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }

  private async attempt(sid: string, reason: SessionEndReason, delayMs: number, tries: number): Promise<void> {
    try {
      await this.options.broadcast(sid, reason);
      this.pending.delete(sid);
      if (tries > 1) this.options.logger.info({ reason, tries }, "session end broadcast after retries");
    } catch (err) {
      if (this.stopped) return;
      if (tries === 1)
        this.options.logger.warn({ err: (err as Error).message, reason }, "session end not broadcast yet; retrying");
      // Jittered, so the ends queued during an outage do not all retry in the same instant.
      const wait = delayMs / 2 + Math.random() * (delayMs / 2);
      const next = Math.min(delayMs * 2, this.options.maxRetryDelayMs);
      const timer = setTimeout(() => void this.attempt(sid, reason, next, tries + 1), wait);
      timer.unref();
      this.pending.set(sid, timer);
    }
  }
}
