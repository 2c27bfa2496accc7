import type { IncomingMessage } from "node:http";
import { ErrorCode } from "@tether/shared";
import { TetherError } from "../errors.js";
import type { AuthStore, LimitCounter } from "../store/types.js";
import type { Deadline, RequestDeadlines } from "./deadline.js";
import { hostSessionId, hostSessionKeys, Keys, tagOf } from "./keys.js";
import { type RateLimits, rateLimited } from "./limits.js";
import { randomSecret } from "./secrets.js";
import { sessionIdFromRequest } from "./sessions.js";

/**
 * A session the host app vouches for (`tether.issueTokenFor`): the host already
 * authenticated the user, behind its own session or JWT.
 */
export interface HostSessionGrant {
  /** The user: the target `{ user: userId }` of published events. */
  userId: string;
  /**
   * A key unique to the host's session (its session id, a JWT's `jti`): the same key
   * for every token of that session, never the user id (an ended key stays ended).
   * Tether stores only a hash of it. The first grant binds the key to its user: a grant
   * of the same key for another user is refused with FORBIDDEN for as long as Tether
   * remembers the key (at least until the session's cap, and the host's `expiresAt`, have
   * passed), so a key that is unique per user only (a per-user counter) collides loudly
   * instead of moving one user's session to another.
   */
  sessionKey: string;
  /**
   * Epoch ms: the host session's expiry, a cap on the Tether session. The host may move it
   * with later grants, but never past `TETHER_SESSION_MAX_AGE` after the key's first grant.
   * Optional: without it the Tether session is capped by that max age alone (the key's
   * first grant + `TETHER_SESSION_MAX_AGE`), and renewed while the user is connected as
   * any session; the host ends it earlier with `tether.endSession` (at its logout).
   */
  expiresAt?: number;
}

/**
 * How long Tether remembers a host session's key at most for the host's `expiresAt`
 * (beyond its own max age): a host expiry decades away must not keep a record forever.
 */
const HOST_EXPIRY_HORIZON_MS = 366 * 24 * 3_600_000;

export interface TokenIssuerOptions {
  store: AuthStore;
  limits: RateLimits;
  deadlines: RequestDeadlines;
  /** The live list of session secrets, for reading the session cookie. */
  sessionSecrets: string[];
  sessionIdleTtlMs: number;
  sessionMaxAgeMs: number;
  wsTokenTtlMs: number;
  /** How long a resume ticket lives (0 when they are off): a host session's key stays bound that long more. */
  ticketTtlMs: number;
}

/** WS tokens: minted for a login session's cookie, or for a session the host app vouches for. */
export class TokenIssuer {
  constructor(private readonly options: TokenIssuerOptions) {}

  /**
   * Mints a single-use WS token for the request's session (and renews the
   * session), counting the session's token limit in the same store step: one
   * round trip, no session load.
   */
  async issue(req: IncomingMessage): Promise<{ token: string; expiresAt: number }> {
    const sid = sessionIdFromRequest(req, this.options.sessionSecrets);
    if (sid === undefined) throw new TetherError(ErrorCode.SessionRequired);
    const limit = this.options.limits.counter("token", () => tagOf(sid));
    return this.mint(sid, this.options.deadlines.of(req), limit);
  }

  /**
   * Mints a WS token for a session the host app vouches for. The session (keyed by a
   * hash of the host's session key, stored like a login session: idle TTL, capped) is
   * checked against its record and written or renewed in one store step, then the token
   * is minted as for a cookie session, under the same per-session limit (counted first:
   * a refused request writes nothing). The first grant of a key binds it to its user and
   * fixes its cap at that instant plus `TETHER_SESSION_MAX_AGE` (the host's `expiresAt`,
   * when given, caps it further); later grants and reconnects never move it.
   *
   * Refusals: FORBIDDEN when the key belongs to another user's session (refused, not made
   * a second session: the key names one session, the one `endHostSession` ends);
   * SESSION_REQUIRED when the host's session has expired, the cap has passed, or the key
   * was ended with `endHostSession`.
   */
  async issueFor(req: IncomingMessage, grant: HostSessionGrant): Promise<{ token: string; expiresAt: number }> {
    const { userId, sessionKey } = grant;
    if (typeof userId !== "string" || userId === "")
      throw new TypeError("issueTokenFor: userId must be a non-empty string");
    if (typeof sessionKey !== "string" || sessionKey === "")
      throw new TypeError("issueTokenFor: sessionKey must be a non-empty string");
    if (grant.expiresAt !== undefined && (typeof grant.expiresAt !== "number" || Number.isNaN(grant.expiresAt)))
      throw new TypeError("issueTokenFor: expiresAt must be an epoch time in ms, or absent");
    const now = Date.now();
    const { sessionIdleTtlMs, sessionMaxAgeMs, wsTokenTtlMs, ticketTtlMs, store } = this.options;
    // No host expiry: one max age from now, so the cap is the key's first grant + max age (the
    // store keeps the earlier of the two), and an end is remembered the max age, as with one.
    const expiresAt = grant.expiresAt ?? now + sessionMaxAgeMs;
    if (expiresAt <= now) throw new TetherError(ErrorCode.SessionRequired, "The host session has expired.");
    const sid = hostSessionId(sessionKey);
    const deadline = this.options.deadlines.of(req);
    await this.options.limits.consume("token", () => tagOf(sid), deadline);
    const put = await deadline.run(
      store.putHostSession(hostSessionKeys(sid), {
        userId,
        // Whole ms (the record is kept in Redis as integers), and a far-off expiry bounded.
        expiresAt: Math.floor(Math.min(expiresAt, now + Math.max(sessionMaxAgeMs, HOST_EXPIRY_HORIZON_MS))),
        now,
        maxAgeMs: sessionMaxAgeMs,
        idleTtlMs: sessionIdleTtlMs,
        // A socket past the cap is ended within one session check (shorter than the idle TTL),
        // and a token or ticket it got meanwhile lives its TTL more: the key stays bound that long.
        credentialTtlMs: Math.max(wsTokenTtlMs, ticketTtlMs) + sessionIdleTtlMs,
      }),
    );
    if (put.status === "other-user")
      throw new TetherError(ErrorCode.Forbidden, "This session key belongs to another user's session.");
    if (put.status === "ended") throw new TetherError(ErrorCode.SessionRequired, "The host session was ended.");
    if (put.status === "expired")
      throw new TetherError(ErrorCode.SessionRequired, "The session has reached its maximum age.");
    return this.mint(sid, deadline);
  }

  /**
   * Ends a host-issued session: deletes it, and refuses tokens for its key for at least
   * the session max age and at least until the latest host `expiresAt` it was granted
   * with (a credential the host may still present). Returns its session id (for ending
   * its sockets).
   */
  async endHostSession(sessionKey: string): Promise<string> {
    const sid = hostSessionId(sessionKey);
    await this.options.deadlines.fresh().run(
      this.options.store.endHostSession(hostSessionKeys(sid), {
        now: Date.now(),
        maxAgeMs: this.options.sessionMaxAgeMs,
      }),
    );
    return sid;
  }

  /**
   * Stores a single-use token for the session (renewing it), counting `limit` in
   * the same step; SESSION_REQUIRED when the session is gone, RATE_LIMITED past the limit.
   */
  private async mint(
    sid: string,
    deadline: Deadline,
    limit?: LimitCounter,
  ): Promise<{ token: string; expiresAt: number }> {
    const token = randomSecret();
    const { wsTokenTtlMs, sessionIdleTtlMs } = this.options;
    const minted = await deadline.run(
      this.options.store.mintToken(Keys.session(sid), Keys.wsToken(token), sid, wsTokenTtlMs, sessionIdleTtlMs, limit),
    );
    if (typeof minted === "object") throw rateLimited(minted.limitedMs);
    if (!minted) throw new TetherError(ErrorCode.SessionRequired);
    return { token, expiresAt: Date.now() + wsTokenTtlMs };
  }
}
