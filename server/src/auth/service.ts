import type { IncomingMessage } from "node:http";
import { ErrorCode, HandshakeAuthSchema, ResumeTicketSchema } from "@tether/shared";
import type { Request, RequestHandler } from "express";
import { TetherError, toTetherError } from "../errors.js";
import type { AuthStore, ConsumedToken, LimitCounter, StreamHead } from "../store/types.js";
import type { TrustProxy } from "./client-ip.js";
import { Deadline, RequestDeadlines } from "./deadline.js";
import { hostSessionId, hostSessionKeys, Keys, tagOf } from "./keys.js";
import { type RateLimits, rateLimited } from "./limits.js";
import { randomSecret } from "./secrets.js";
import { createSessionMiddleware, parseStoredSession, sessionIdFromRequest } from "./sessions.js";
import type { ResumeTickets } from "./tickets.js";

/**
 * What a login check decided. `account` names the account the attempt was for
 * (e.g. the normalised user name, the same on success and refusal): failed logins
 * are then throttled per account as well as per client address. Without it (the
 * built-in API-key login has a single account) the address is the only key.
 */
export type LoginResult = { userId: string; account?: string } | { refused: true; account?: string };

/**
 * Decides who is logging in: a user id (or `{ userId, account? }`), or null (or
 * `{ refused: true, account? }`) to refuse.
 */
export type LoginCheck = (req: Request) => Promise<string | null | LoginResult> | string | null | LoginResult;

function normaliseLogin(result: string | null | LoginResult): LoginResult {
  if (typeof result === "string") return result === "" ? { refused: true } : { userId: result };
  if (result === null) return { refused: true };
  if ("userId" in result && (typeof result.userId !== "string" || result.userId === "")) return { refused: true };
  return result;
}

export interface AuthServiceOptions {
  store: AuthStore;
  sessionClient: object;
  sessionSecrets: string[];
  sessionIdleTtlMs: number;
  sessionMaxAgeMs: number;
  wsTokenTtlMs: number;
  /** Resume tickets; undefined when they are off. */
  tickets?: ResumeTickets;
  /** The budget of each request's store work, limits included (the Redis command timeout). */
  storeDeadlineMs: number;
  limits: RateLimits;
  /** The client's IP, honouring `trust proxy`. */
  clientIp: (req: IncomingMessage) => string;
  /** Tether's `trust proxy`, for the session cookie's Secure flag. */
  trustProxy?: TrustProxy;
}

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
   */
  expiresAt: number;
}

/**
 * How long Tether remembers a host session's key at most for the host's `expiresAt`
 * (beyond its own max age): a host expiry decades away must not keep a record forever.
 */
const HOST_EXPIRY_HORIZON_MS = 366 * 24 * 3_600_000;

/** Tokens refused before their consume (by the address screen) deleted at once, at most: the rest expire with their TTL. */
const MAX_TOKENS_RETIRING = 1_000;

/** Backoff of the deletion of a token whose consume failed on a store error. */
const TOKEN_RETIRE_FIRST_DELAY_MS = 50;
const TOKEN_RETIRE_MAX_DELAY_MS = 1_000;

/** The identity a consumed token proves. */
export interface SocketIdentity {
  sid: string;
  userId: string;
  /** Epoch ms when the session hits its absolute cap. */
  capAt: number;
}

/** A socket the handshake let in: who it is, what it presented, and its user stream's head when the store read it on the way. */
export interface AdmittedSocket {
  identity: SocketIdentity;
  /** The credential consumed: a WS token, or a resume ticket. */
  credential: "token" | "ticket";
  userHead?: StreamHead;
}

/**
 * All of Tether's auth: the HTTP routes and the socket handshake call these
 * methods; no auth logic lives anywhere else.
 */
export class AuthService {
  /** express-session for the routes that read or write the session itself. */
  readonly sessionMiddleware: RequestHandler;
  private readonly deadlines: RequestDeadlines;
  /** Keys of tokens whose consume failed on a store error, still being deleted. */
  private readonly retiring = new Set<string>();

  constructor(private readonly options: AuthServiceOptions) {
    this.deadlines = new RequestDeadlines(options.storeDeadlineMs);
    this.sessionMiddleware = Deadline.bound(
      createSessionMiddleware({
        client: options.sessionClient,
        secrets: options.sessionSecrets,
        idleTtlMs: options.sessionIdleTtlMs,
        maxAgeMs: options.sessionMaxAgeMs,
        trustProxy: options.trustProxy,
      }),
      (req) => this.deadlines.of(req),
    );
  }

  /**
   * Admits a login attempt before the login check runs: RATE_LIMITED when the
   * fleet-wide breaker is open (counts nothing) or the client address has used its
   * budget (counts the attempt there only). Attempts refused here charge no other limit.
   */
  async admitLogin(req: Request): Promise<void> {
    const deadline = this.deadlines.of(req);
    const { limits, clientIp } = this.options;
    await limits.check("loginGlobal", () => "all", deadline);
    await limits.consume("login", () => clientIp(req), deadline);
  }

  /**
   * Runs the login check on an admitted attempt and returns the user id, or throws
   * INVALID_CREDENTIALS, or RATE_LIMITED when the named account has too many recent
   * failures (then even the right password is refused, so a guess learns nothing, and
   * no other limit is charged). A failure counts against the account and the breaker.
   */
  async verifyLogin(req: Request, check: LoginCheck): Promise<string> {
    const result = normaliseLogin(await check(req));
    // The host's check (password hashing, its own user store) is not Redis time: the store
    // work after it gets a budget of its own.
    const deadline = this.deadlines.restart(req);
    const { limits } = this.options;
    const { account } = result;
    const accountKey = () => tagOf(account ?? "");
    if (account !== undefined) await limits.check("loginAccount", accountKey, deadline);
    if ("userId" in result) {
      if (account !== undefined) await limits.reset("loginAccount", accountKey, deadline);
      return result.userId;
    }
    if (account !== undefined) await limits.charge("loginAccount", accountKey, deadline);
    await limits.charge("loginGlobal", () => "all", deadline);
    throw new TetherError(ErrorCode.InvalidCredentials);
  }

  /** Starts a session for `userId` under a new id (no fixation); the old one is destroyed. */
  async startSession(req: Request, userId: string): Promise<void> {
    const deadline = this.deadlines.of(req);
    try {
      await deadline.run(
        new Promise<void>((resolve, reject) => req.session.regenerate((err) => (err ? reject(err) : resolve()))),
      );
      req.session.userId = userId;
      req.session.capAt = Date.now() + this.options.sessionMaxAgeMs;
      req.session.cookie.maxAge = this.options.sessionMaxAgeMs;
      await deadline.run(
        new Promise<void>((resolve, reject) => req.session.save((err) => (err ? reject(err) : resolve()))),
      );
    } catch (err) {
      // A half-made session would be saved again as the error response ends, and fail again
      // after the response went out: drop it so the client gets one clean 503.
      (req as { session?: unknown }).session = undefined;
      throw err;
    }
  }

  /** Destroys the request's session; returns its id when there was one. */
  /** The id of the request's signed-in session (undefined when it has none). */
  sessionIdOf(req: Request): string | undefined {
    return req.session?.userId === undefined ? undefined : req.sessionID;
  }

  async endSession(req: Request): Promise<string | undefined> {
    if (req.session?.userId === undefined) return undefined;
    const sid = req.sessionID;
    await this.deadlines
      .of(req)
      .run(new Promise<void>((resolve, reject) => req.session.destroy((err) => (err ? reject(err) : resolve()))));
    return sid;
  }

  /** The request's live session, or SESSION_REQUIRED. Needs `sessionMiddleware`. */
  currentSession(req: Request): { userId: string; expiresAt: number } {
    const { userId, capAt } = req.session ?? {};
    if (userId === undefined || capAt === undefined) throw new TetherError(ErrorCode.SessionRequired);
    return { userId, expiresAt: Math.min(Date.now() + this.options.sessionIdleTtlMs, capAt) };
  }

  /**
   * Mints a single-use WS token for the request's session (and renews the
   * session), counting the session's token limit in the same store step: one
   * round trip, no session load.
   */
  async issueToken(req: IncomingMessage): Promise<{ token: string; expiresAt: number }> {
    const sid = sessionIdFromRequest(req, this.options.sessionSecrets);
    if (sid === undefined) throw new TetherError(ErrorCode.SessionRequired);
    const limit = this.options.limits.counter("token", () => tagOf(sid));
    return this.mint(sid, this.deadlines.of(req), limit);
  }

  /**
   * Mints a WS token for a session the host app vouches for. The session (keyed by a
   * hash of the host's session key, stored like a login session: idle TTL, capped) is
   * checked against its record and written or renewed in one store step, then the token
   * is minted as for a cookie session, under the same per-session limit (counted first:
   * a refused request writes nothing). The first grant of a key binds it to its user and
   * fixes its cap at that instant plus `TETHER_SESSION_MAX_AGE` (the host's `expiresAt`
   * caps it further); later grants and reconnects never move it.
   *
   * Refusals: FORBIDDEN when the key belongs to another user's session (refused, not made
   * a second session: the key names one session, the one `endHostSession` ends);
   * SESSION_REQUIRED when the host's session has expired, the cap has passed, or the key
   * was ended with `endHostSession`.
   */
  async issueTokenFor(req: IncomingMessage, grant: HostSessionGrant): Promise<{ token: string; expiresAt: number }> {
    const { userId, sessionKey, expiresAt } = grant;
    if (typeof userId !== "string" || userId === "")
      throw new TypeError("issueTokenFor: userId must be a non-empty string");
    if (typeof sessionKey !== "string" || sessionKey === "")
      throw new TypeError("issueTokenFor: sessionKey must be a non-empty string");
    if (typeof expiresAt !== "number" || Number.isNaN(expiresAt))
      throw new TypeError("issueTokenFor: expiresAt must be an epoch time in ms");
    const now = Date.now();
    if (expiresAt <= now) throw new TetherError(ErrorCode.SessionRequired, "The host session has expired.");
    const { sessionIdleTtlMs, sessionMaxAgeMs, wsTokenTtlMs, tickets, store } = this.options;
    const sid = hostSessionId(sessionKey);
    const deadline = this.deadlines.of(req);
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
        credentialTtlMs: Math.max(wsTokenTtlMs, tickets?.ttlMs ?? 0) + sessionIdleTtlMs,
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
    await this.deadlines.fresh().run(
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

  /**
   * The free checks of a handshake, before it may spend anything shared: the
   * client address's handshake budget on this instance (counted in process, for
   * every attempt, well-formed or not), then the credential's shape. Throws
   * RATE_LIMITED or TOKEN_INVALID; a handshake that passes goes on to admission
   * control and then `admitSocket`.
   */
  async screenSocket(auth: unknown, req: IncomingMessage): Promise<void> {
    const sent = (typeof auth === "object" && auth !== null ? auth : {}) as { token?: unknown; ticket?: unknown };
    const token = HandshakeAuthSchema.shape.token.safeParse(sent.token);
    try {
      await this.options.limits.screen("handshakeIp", () => this.options.clientIp(req));
    } catch (err) {
      // A token presented once is never usable again, refused or not (as when the store counts the limit).
      if (token.success) this.retireToken(Keys.wsToken(token.data), { ifRoom: true });
      throw err;
    }
    const wellFormed =
      token.success ||
      (sent.token === undefined &&
        this.options.tickets !== undefined &&
        ResumeTicketSchema.safeParse(sent.ticket).success);
    if (!wellFormed) throw new TetherError(ErrorCode.TokenInvalid);
  }

  /**
   * Admits a socket: consumes the credential in its handshake `auth` — a WS
   * token, or a resume ticket the server pushed earlier — and checks its
   * session, in one store step that also counts the address limit (and, for a
   * ticket, the session limit: its session is known before the store is asked).
   * A token's session was charged when the token was issued, so a token
   * handshake is not charged to it again.
   */
  async admitSocket(auth: unknown, req: IncomingMessage): Promise<AdmittedSocket> {
    // One handshake, one budget (a fresh one: a request object may outlive one handshake).
    const deadline = this.deadlines.fresh();
    const sent = (typeof auth === "object" && auth !== null ? auth : {}) as { token?: unknown; ticket?: unknown };
    if (sent.ticket !== undefined && sent.token === undefined) return this.admitWithTicket(sent.ticket, req, deadline);
    const { limits, store, clientIp } = this.options;
    const parsed = HandshakeAuthSchema.shape.token.safeParse(sent.token);
    const ipKey = () => clientIp(req);
    if (!parsed.success) {
      // `screenSocket` refuses it first; counted as a handshake all the same.
      await limits.consume("handshakeIp", ipKey, deadline).catch(() => undefined);
      throw new TetherError(ErrorCode.TokenInvalid);
    }
    const tokenKey = Keys.wsToken(parsed.data);
    let found: ConsumedToken;
    try {
      found = await deadline.run(
        store.consumeToken(tokenKey, Keys.sessionPrefix, counted(limits.counter("handshakeIp", ipKey))),
      );
    } catch (err) {
      // The token may have survived (a refused write, a reply lost in a timeout): make sure it dies.
      if (toTetherError(err).code === ErrorCode.Unavailable) this.retireToken(tokenKey);
      throw err;
    }
    return this.admitted(found, "token");
  }

  private async admitWithTicket(ticket: unknown, req: IncomingMessage, deadline: Deadline): Promise<AdmittedSocket> {
    const { limits, store, clientIp, tickets } = this.options;
    const claims = tickets && ResumeTicketSchema.safeParse(ticket).success ? tickets.open(ticket as string) : undefined;
    if (!claims) throw new TetherError(ErrorCode.TokenInvalid, "The resume ticket is not valid: fetch a WS token.");
    const found = await deadline.run(
      store.consumeTicket(
        Keys.ticketNonce(claims.nonce),
        Math.max(1, claims.expiresAt - Date.now()),
        claims.sid,
        Keys.sessionPrefix,
        counted(
          limits.counter("handshakeIp", () => clientIp(req)),
          limits.counter("handshakeSession", () => tagOf(claims.sid)),
        ),
      ),
    );
    return this.admitted(found, "ticket");
  }

  private admitted(found: ConsumedToken, credential: AdmittedSocket["credential"]): AdmittedSocket {
    if (found.status === "limited") throw rateLimited(found.msBeforeNext);
    if (found.status === "unknown") throw new TetherError(ErrorCode.TokenInvalid);
    const session = found.status === "ok" ? parseStoredSession(found.session) : undefined;
    if (session === undefined || session.capAt <= Date.now()) throw new TetherError(ErrorCode.SessionExpired);
    const identity = { sid: found.sid, userId: session.userId, capAt: session.capAt };
    return found.status === "ok" && found.userHead
      ? { identity, credential, userHead: found.userHead }
      : { identity, credential };
  }

  /** A resume ticket for a connected socket's session (none when tickets are off). */
  issueTicket(sid: string): { ticket: string; expiresAt: number } | undefined {
    return this.options.tickets?.issue(sid);
  }

  /**
   * Deletes a token whose consume failed on a store error (or that was refused
   * before its consume: `ifRoom`, skipped when many are pending), retrying with
   * backoff until it is gone or its TTL has passed (then it is gone anyway): a
   * token that was presented once is never usable again, even if Redis kept it.
   */
  private retireToken(tokenKey: string, { ifRoom = false } = {}): void {
    if (this.retiring.has(tokenKey)) return;
    // A flood of made-up tokens must not become a flood of deletions: past this many, those are skipped.
    if (ifRoom && this.retiring.size >= MAX_TOKENS_RETIRING) return;
    this.retiring.add(tokenKey);
    const until = Date.now() + this.options.wsTokenTtlMs;
    const attempt = (delayMs: number): void => {
      this.options.store.deleteToken(tokenKey).then(
        () => this.retiring.delete(tokenKey),
        () => {
          if (Date.now() >= until) return void this.retiring.delete(tokenKey);
          setTimeout(() => attempt(Math.min(delayMs * 2, TOKEN_RETIRE_MAX_DELAY_MS)), delayMs).unref();
        },
      );
    };
    attempt(TOKEN_RETIRE_FIRST_DELAY_MS);
  }

  /** Renews the idle TTL of these sessions; returns the ids of those that are gone. */
  async renewSessions(sids: string[]): Promise<string[]> {
    const gone = await this.options.store.renewSessions(sids.map(Keys.session), this.options.sessionIdleTtlMs);
    return gone.flatMap((index) => sids[index] ?? []);
  }
}

/** The limits that are on, for a store step to count. */
function counted(...limits: (LimitCounter | undefined)[]): LimitCounter[] {
  return limits.filter((limit) => limit !== undefined);
}
