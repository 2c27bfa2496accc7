import { SessionEndReason } from "@tether/shared";
import type { Logger } from "pino";
import type { AuthService } from "../auth/service.js";
import type { SocketLifetime } from "./socket-lifetime.js";
import type { TetherSocket } from "./types.js";

/** Sessions renewed per store call: bounds one script's run time in Redis. */
const RENEW_BATCH = 500;

interface TrackedSession {
  sockets: number;
  capAt: number;
  /** When it is due for renewal (half its idle TTL after the last renewal known here); 0: the first round. */
  renewAt: number;
}

/**
 * Keeps the login sessions of connected sockets alive, and notices their end.
 * Once per interval, per instance (not per socket, not per ping), in one store
 * call per `RENEW_BATCH` sessions: renew the idle TTL of each session with a
 * socket here once less than half of it is left (reckoned from its token's mint,
 * or at the first round when that is not known, then every half idle TTL: a
 * connected session never expires), and
 * check that the others still exist (one EXISTS for the batch). A session that
 * is gone (logout elsewhere, deleted by an operator, evicted) was revoked, and
 * one past its absolute cap expired. Either way its sockets on every instance
 * are told. Idle, a round costs two commands per batch, not three per session.
 */
export class SessionLiveness {
  private readonly sessions = new Map<string, TrackedSession>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly part: number;

  constructor(
    private readonly auth: AuthService,
    private readonly intervalMs: number,
    /** The sessions' idle TTL: each is renewed before less than half of it is left at the next round. */
    private readonly idleTtlMs: number,
    private readonly endSession: (sid: string, reason: SessionEndReason) => void,
    private readonly logger: Logger,
    private readonly lifetime: SocketLifetime,
  ) {
    this.part = lifetime.part({ release: (socket) => this.untrack(socket.data.sid) });
  }

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), this.intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Number of distinct sessions with a socket on this instance. */
  get size(): number {
    return this.sessions.size;
  }

  track(socket: TetherSocket): void {
    const { sid, capAt, renewedAt } = socket.data;
    // Renewed (by its token's mint) at `renewedAt`: half the idle TTL later it is due; not known: at once.
    const renewAt = renewedAt === undefined ? 0 : renewedAt + this.idleTtlMs / 2;
    const tracked = this.sessions.get(sid);
    if (tracked) {
      tracked.sockets += 1;
      // A host-issued session's cap moves when the host extends its own session.
      tracked.capAt = Math.max(tracked.capAt, capAt);
      tracked.renewAt = Math.max(tracked.renewAt, renewAt);
    } else this.sessions.set(sid, { sockets: 1, capAt, renewAt });
    this.lifetime.took(socket, this.part);
  }

  private untrack(sid: string): void {
    const tracked = this.sessions.get(sid);
    if (!tracked) return;
    tracked.sockets -= 1;
    if (tracked.sockets <= 0) this.sessions.delete(sid);
  }

  /** One renewal round; overlapping rounds (a slow Redis) are skipped, not stacked. */
  tick(): Promise<void> {
    this.running ??= this.renewAll().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async renewAll(): Promise<void> {
    const now = Date.now();
    // Due: less than half the idle TTL would be left by the next round (this instance's own
    // renewals are the clock; one from another instance only makes the session live longer).
    const due: string[] = [];
    const check: string[] = [];
    for (const [sid, { capAt, renewAt }] of this.sessions) {
      if (capAt <= now) this.end(sid, SessionEndReason.Expired);
      else if (renewAt <= now + this.intervalMs) due.push(sid);
      else check.push(sid);
    }
    const live = [...due, ...check];
    for (let start = 0; start < live.length; start += RENEW_BATCH) {
      const batch = live.slice(start, start + RENEW_BATCH);
      const renewing = batch.slice(0, Math.max(0, Math.min(batch.length, due.length - start)));
      const sentAt = Date.now();
      try {
        const gone = await this.auth.renewSessions(renewing, batch.slice(renewing.length));
        for (const sid of renewing) {
          const tracked = this.sessions.get(sid);
          if (tracked) tracked.renewAt = sentAt + this.idleTtlMs / 2;
        }
        for (const sid of gone) {
          const capAt = this.sessions.get(sid)?.capAt ?? Number.POSITIVE_INFINITY;
          this.end(sid, capAt <= Date.now() ? SessionEndReason.Expired : SessionEndReason.Revoked);
        }
      } catch (err) {
        // Redis is down: keep every socket; the next round renews them.
        this.logger.warn({ err: (err as Error).message, sessions: batch.length }, "session renewal failed");
        return;
      }
    }
  }

  /**
   * Ends the session (its sockets here go at once, and leave the tracking as
   * they disconnect). It stays tracked until they have: one that escaped (it
   * connected in the same instant) is ended again next round.
   */
  private end(sid: string, reason: SessionEndReason): void {
    this.endSession(sid, reason);
  }
}
