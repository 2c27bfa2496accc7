import type { IncomingMessage } from "node:http";
import { ErrorCode, HandshakeAuthSchema, isResumeTicketShaped } from "@tether/shared";
import { TetherError, toTetherError } from "../errors.js";
import type { AuthStore, ConsumedToken, LimitCounter, StreamHead } from "../store/types.js";
import type { Deadline, RequestDeadlines } from "./deadline.js";
import { Keys, tagOf } from "./keys.js";
import { type RateLimits, rateLimited } from "./limits.js";
import { parseStoredSession, SESSION_COOKIE, sessionIdFromRequest } from "./sessions.js";
import type { ResumeTickets } from "./tickets.js";

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
  /**
   * Epoch ms by which the session's idle TTL was last renewed, at the latest: a WS token's
   * mint renewed it, at most a token TTL before the handshake. Undefined: not known (a ticket).
   */
  renewedAt?: number | undefined;
}

/** A socket the handshake let in: who it is, what it presented, and its user stream's head when the store read it on the way. */
export interface AdmittedSocket {
  identity: SocketIdentity;
  /** The credential it presented: a WS token or a resume ticket (both spent), or its session cookie. */
  credential: "token" | "ticket" | "cookie";
  userHead?: StreamHead;
}

/**
 * What a handshake's `auth` presents: a resume ticket (unchecked yet), the session cookie
 * of its request (`cookie: true`, nothing else), or a WS token (undefined when malformed).
 */
type Presented = { ticket: unknown } | { cookie: true } | { token: string | undefined };

function presented(auth: unknown): Presented {
  const sent = (typeof auth === "object" && auth !== null ? auth : {}) as {
    token?: unknown;
    ticket?: unknown;
    cookie?: unknown;
  };
  if (sent.ticket !== undefined && sent.token === undefined) return { ticket: sent.ticket };
  if (sent.cookie === true && sent.token === undefined) return { cookie: true };
  const token = HandshakeAuthSchema.shape.token.safeParse(sent.token);
  return { token: token.success ? token.data : undefined };
}

export interface SocketAdmissionOptions {
  store: AuthStore;
  limits: RateLimits;
  deadlines: RequestDeadlines;
  /** The client's IP, honouring `trust proxy`. */
  clientIp: (req: IncomingMessage) => string;
  /** Resume tickets; undefined when they are off. */
  tickets?: ResumeTickets;
  wsTokenTtlMs: number;
  /** The session cookie's secrets (the first signs, all verify): a handshake by cookie unsigns it. */
  sessionSecrets: string[];
  /** A handshake by cookie renews its session for this long. */
  sessionIdleTtlMs: number;
}

/**
 * Who may open a socket: the handshake's free checks, then the consume of its
 * credential (a WS token, or a resume ticket the server pushed earlier), and the
 * resume tickets a connected socket is given for its next handshake.
 */
export class SocketAdmission {
  /** Keys of tokens whose consume failed on a store error, still being deleted. */
  private readonly retiring = new Set<string>();

  constructor(private readonly options: SocketAdmissionOptions) {}

  /**
   * The free checks of a handshake, before it may spend anything shared: the
   * client address's handshake budget on this instance (counted in process, for
   * every attempt, well-formed or not), then the credential's shape. Throws
   * RATE_LIMITED or TOKEN_INVALID; a handshake that passes goes on to admission
   * control and then `admit`.
   */
  screen(auth: unknown, req: IncomingMessage): void {
    const credential = presented(auth);
    try {
      this.options.limits.screen("handshakeIp", () => this.options.clientIp(req));
    } catch (err) {
      // A token presented once is never usable again, refused or not (as when the store counts the limit).
      if ("token" in credential && credential.token !== undefined)
        this.retireToken(Keys.wsToken(credential.token), { ifRoom: true });
      throw err;
    }
    if (!wellFormed(credential, req, this.options.tickets !== undefined)) throw new TetherError(ErrorCode.TokenInvalid);
  }

  /**
   * Admits a socket: consumes the credential in its handshake `auth` and checks
   * its session, in one store step that also counts the address limit (and, for a
   * ticket, the session limit: its session is known before the store is asked).
   * A token's session was charged when the token was issued, so a token
   * handshake is not charged to it again.
   */
  async admit(auth: unknown, req: IncomingMessage): Promise<AdmittedSocket> {
    // One handshake, one budget (a fresh one: a request object may outlive one handshake).
    const deadline = this.options.deadlines.fresh();
    const credential = presented(auth);
    if ("ticket" in credential) return this.admitWithTicket(credential.ticket, req, deadline);
    if ("cookie" in credential) return this.admitWithCookie(req, deadline);
    const { limits, store, clientIp } = this.options;
    const ipKey = () => clientIp(req);
    if (credential.token === undefined) {
      // `screen` refuses it first; counted as a handshake all the same.
      await limits.consume("handshakeIp", ipKey, deadline).catch(() => undefined);
      throw new TetherError(ErrorCode.TokenInvalid);
    }
    const tokenKey = Keys.wsToken(credential.token);
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

  /** A resume ticket for a connected socket's session (none when tickets are off). */
  issueTicket(sid: string): { ticket: string; expiresAt: number } | undefined {
    return this.options.tickets?.issue(sid);
  }

  private async admitWithTicket(ticket: unknown, req: IncomingMessage, deadline: Deadline): Promise<AdmittedSocket> {
    const { limits, store, clientIp, tickets } = this.options;
    const claims = tickets && isResumeTicketShaped(ticket) ? tickets.open(ticket) : undefined;
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

  /**
   * A handshake by the session cookie its request carries (the first connect of a browser
   * on the same site: no token request before it). The cookie is the credential, so
   * nothing is spent; the address and the session are charged, as for a ticket. A cookie
   * that is not ours or a session that is gone is refused TOKEN_INVALID, never
   * SESSION_EXPIRED: the client asks the token route, which says whether to log in.
   */
  private async admitWithCookie(req: IncomingMessage, deadline: Deadline): Promise<AdmittedSocket> {
    const { limits, store, clientIp, sessionSecrets, sessionIdleTtlMs } = this.options;
    const ipKey = () => clientIp(req);
    const sid = sessionIdFromRequest(req, sessionSecrets);
    if (sid === undefined) {
      await limits.consume("handshakeIp", ipKey, deadline).catch(() => undefined);
      throw new TetherError(ErrorCode.TokenInvalid, NO_COOKIE_SESSION);
    }
    const found = await deadline.run(
      store.admitSession(
        sid,
        Keys.sessionPrefix,
        sessionIdleTtlMs,
        counted(
          limits.counter("handshakeIp", ipKey),
          limits.counter("handshakeSession", () => tagOf(sid)),
        ),
      ),
    );
    if (found.status === "session-gone") throw new TetherError(ErrorCode.TokenInvalid, NO_COOKIE_SESSION);
    return this.admitted(found, "cookie");
  }

  private admitted(found: ConsumedToken, credential: AdmittedSocket["credential"]): AdmittedSocket {
    if (found.status === "limited") throw rateLimited(found.msBeforeNext);
    if (found.status === "unknown") throw new TetherError(ErrorCode.TokenInvalid);
    const session = found.status === "ok" ? parseStoredSession(found.session) : undefined;
    if (session === undefined || session.capAt <= Date.now()) {
      if (credential === "cookie") throw new TetherError(ErrorCode.TokenInvalid, NO_COOKIE_SESSION);
      throw new TetherError(ErrorCode.SessionExpired);
    }
    // Renewed by the token's mint (at most a token TTL ago), or by the cookie handshake's own step just now.
    const renewedAt =
      credential === "token"
        ? Date.now() - this.options.wsTokenTtlMs
        : credential === "cookie"
          ? Date.now()
          : undefined;
    // Every property in the literal, even when undefined: one added later would cost the
    // socket's life a property array (40 B per socket).
    const identity: SocketIdentity = { sid: found.sid, userId: session.userId, capAt: session.capAt, renewedAt };
    return found.status === "ok" && found.userHead
      ? { identity, credential, userHead: found.userHead }
      : { identity, credential };
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
}

/** Why a handshake by cookie was refused: the client fetches a token, and the token route decides. */
const NO_COOKIE_SESSION = "No signed-in session cookie came with this handshake: fetch a WS token.";

/**
 * The free shape check of a credential. A cookie handshake needs our cookie in the
 * request (its signature is checked by `admit`); a browser on another site, or a
 * client that keeps cookies elsewhere, sends none.
 */
function wellFormed(credential: Presented, req: IncomingMessage, ticketsOn: boolean): boolean {
  if ("token" in credential) return credential.token !== undefined;
  if ("cookie" in credential) return req.headers.cookie?.includes(`${SESSION_COOKIE}=`) === true;
  return ticketsOn && isResumeTicketShaped(credential.ticket);
}

/** The limits that are on, for a store step to count. */
function counted(...limits: (LimitCounter | undefined)[]): LimitCounter[] {
  return limits.filter((limit) => limit !== undefined);
}
