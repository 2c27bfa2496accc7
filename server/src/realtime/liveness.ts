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
  /** When its existence is next checked (a phase in the sweep, kept from check to check). */
  checkAt: number;
  /** Set by `recheck` (its number): checked at the next round by a call sent after it; 0: not asked. */
  recheck: number;
}

/** When the liveness rounds run and what each covers. */
export interface LivenessTiming {
  /** How often a round runs. */
  intervalMs: number;
  /** The sessions' idle TTL: each is renewed before less than half of it is left at the next round. */
  idleTtlMs: number;
  /**
   * Each session not due for renewal has its existence checked once per this period, the
   * sessions spread evenly over it (at least `intervalMs`; equal to it: every round checks all).
   */
  sweepMs: number;
}

/**
 * Keeps the login sessions of connected sockets alive, and notices their end.
 * Once per interval, per instance (not per socket, not per ping), in one store
 * call per `RENEW_BATCH` sessions: renew the idle TTL of each session with a
 * socket here once less than half of it is left (reckoned from its token's mint,
 * or at the first round when that is not known, then every half idle TTL: a
 * connected session never expires), and check that the others still exist.
 * A session that is gone (logout elsewhere, deleted by an operator, evicted)
 * was revoked, and one past its absolute cap expired. Either way its sockets on
 * every instance are told.
 *
 * The cost of a check decides how often each session gets one. On one Redis
 * one EXISTS covers a batch: every round checks every session (idle, a round
 * costs two commands per batch, not three per session). On a Redis Cluster the
 * sessions' keys live in different slots and each check is a command of its
 * own: each session is checked once per sweep (`timing.sweepMs`, default 10
 * minutes), in the round its phase falls in, so 10,000 idle sessions cost
 * about 17 commands/s instead of 333. That is enough because a session ended
 * normally (logout, a host's end, a revocation) reaches its sockets by its end
 * message, and such a message is lost only while the session-end subscription
 * is not heard: when it is heard again, `recheck` checks the sessions it
 * covers at once (after a reconnect all; on a Cluster, those whose channel is
 * on a shard that got a new subscriber), in a round of their own that leaves
 * the sweep's checks to the scheduled rounds. The sweep is the backstop for a
 * session that vanished without a message (an eviction, an operator's DEL, a
 * FLUSHALL), found within one sweep.
 */
export class SessionLiveness {
  private readonly sessions = new Map<string, TrackedSession>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** How many `recheck`s were asked for: a check sent after the nth answers the nth. */
  private rechecks = 0;
  /** A round is asked for while one runs: it starts when that one ends. */
  private again = false;
  private readonly part: number;
  private readonly intervalMs: number;
  private readonly idleTtlMs: number;
  private readonly sweepMs: number;

  constructor(
    private readonly auth: AuthService,
    timing: LivenessTiming,
    private readonly endSession: (sid: string, reason: SessionEndReason) => void,
    private readonly logger: Logger,
    private readonly lifetime: SocketLifetime,
  ) {
    this.intervalMs = timing.intervalMs;
    this.idleTtlMs = timing.idleTtlMs;
    this.sweepMs = Math.max(timing.sweepMs, timing.intervalMs);
    this.part = lifetime.part({ release: (socket) => this.untrack(socket.data.sid) });
  }

  start(): void {
    this.timer ??= setInterval(() => void this.tick(true), this.intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Checks every session (those `covers` says, when given) now, or as soon as the round in
   * flight ends (it may have read before a change): an end message may have been lost.
   * A session's round that fails is retried at the next round.
   */
  recheck(covers?: (sid: string) => boolean): void {
    if (this.timer === undefined) return;
    this.rechecks += 1;
    for (const [sid, tracked] of this.sessions) if (!covers || covers(sid)) tracked.recheck = this.rechecks;
    if (this.running) this.again = true;
    else void this.tick(false);
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
    } else {
      // Its phase in the sweep: spread evenly (the handshake has just read the session).
      const checkAt = Date.now() + Math.random() * this.sweepMs;
      this.sessions.set(sid, { sockets: 1, capAt, renewAt, checkAt, recheck: 0 });
    }
    this.lifetime.took(socket, this.part);
  }

  private untrack(sid: string): void {
    const tracked = this.sessions.get(sid);
    if (!tracked) return;
    tracked.sockets -= 1;
    if (tracked.sockets <= 0) this.sessions.delete(sid);
  }

  /**
   * One round; overlapping rounds (a slow Redis) are skipped, not stacked (what a skipped
   * one would have done, the next does). A round out of `scheduled` time, for `recheck`,
   * leaves the sweep's checks to the scheduled ones: it costs only what it was asked for.
   */
  tick(scheduled = true): Promise<void> {
    this.running ??= this.renewAll(scheduled).finally(() => {
      this.running = undefined;
      if (!this.again) return;
      this.again = false;
      void this.tick(false);
    });
    return this.running;
  }

  private async renewAll(scheduled: boolean): Promise<void> {
    const now = Date.now();
    // Due: less than half the idle TTL would be left by the next round (this instance's own
    // renewals are the clock; one from another instance only makes the session live longer).
    // Checked: those whose phase in the sweep falls before the next round (every round when the
    // sweep is one round), and those `recheck` asked for.
    const due: string[] = [];
    const check: string[] = [];
    for (const [sid, { capAt, renewAt, checkAt, recheck }] of this.sessions) {
      if (capAt <= now) this.end(sid, SessionEndReason.Expired);
      else if (renewAt <= now + this.intervalMs) due.push(sid);
      else if (recheck > 0 || (scheduled && checkAt <= now + this.intervalMs)) check.push(sid);
    }
    const live = [...due, ...check];
    for (let start = 0; start < live.length; start += RENEW_BATCH) {
      const batch = live.slice(start, start + RENEW_BATCH);
      const renewing = batch.slice(0, Math.max(0, Math.min(batch.length, due.length - start)));
      const sentAt = Date.now();
      const rechecks = this.rechecks;
      try {
        const gone = await this.auth.renewSessions(renewing, batch.slice(renewing.length));
        for (const sid of renewing) {
          const tracked = this.sessions.get(sid);
          if (tracked) tracked.renewAt = sentAt + this.idleTtlMs / 2;
        }
        for (const sid of batch) this.checked(sid, now, sentAt, rechecks);
        for (const sid of gone) {
          const capAt = this.sessions.get(sid)?.capAt ?? Number.POSITIVE_INFINITY;
          this.end(sid, capAt <= Date.now() ? SessionEndReason.Expired : SessionEndReason.Revoked);
        }
      } catch (err) {
        // Redis is down: keep every socket; the next round renews them (and rechecks, if asked).
        this.logger.warn({ err: (err as Error).message, sessions: batch.length }, "session renewal failed");
        return;
      }
    }
  }

  /**
   * A session's existence was checked (or it was renewed) by a call sent at `sentAt`, after
   * `rechecks` rechecks: that answers them. Its next check is its phase's next turn after that,
   * if this was its turn (a renewal or a recheck out of turn leaves its phase: the sweep stays spread).
   */
  private checked(sid: string, roundAt: number, sentAt: number, rechecks: number): void {
    const tracked = this.sessions.get(sid);
    if (!tracked) return;
    if (tracked.recheck <= rechecks) tracked.recheck = 0;
    if (tracked.checkAt > roundAt + this.intervalMs) return;
    tracked.checkAt += this.sweepMs * Math.max(1, Math.ceil((sentAt - tracked.checkAt) / this.sweepMs));
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
