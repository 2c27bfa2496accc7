import type { IncomingMessage } from "node:http";
import type { Request, RequestHandler } from "express";
import type { AuthStore } from "../store/types.js";
import type { TrustProxy } from "./client-ip.js";
import { RequestDeadlines } from "./deadline.js";
import type { RateLimits } from "./limits.js";
import { type LoginCheck, LoginThrottle } from "./login.js";
import { LoginSessions } from "./sessions.js";
import { type AdmittedSocket, SocketAdmission } from "./socket-admission.js";
import type { ResumeTickets } from "./tickets.js";
import { type HostSessionGrant, TokenIssuer } from "./tokens.js";

export type { LoginCheck, LoginResult } from "./login.js";
export type { AdmittedSocket, SocketIdentity } from "./socket-admission.js";
export type { HostSessionGrant } from "./tokens.js";

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
 * All of Tether's auth, in one place: the HTTP routes and the socket handshake
 * call these methods, and no auth logic lives anywhere else. Each is one of the
 * parts below (login, sessions, tokens, socket admission), which share the
 * store, the rate limits and each request's deadline.
 */
export class AuthService {
  /** express-session for the routes that read or write the session itself. */
  readonly sessionMiddleware: RequestHandler;
  private readonly logins: LoginThrottle;
  private readonly sessions: LoginSessions;
  private readonly tokens: TokenIssuer;
  private readonly sockets: SocketAdmission;

  constructor(options: AuthServiceOptions) {
    const { store, limits, clientIp, tickets, wsTokenTtlMs } = options;
    const deadlines = new RequestDeadlines(options.storeDeadlineMs);
    this.logins = new LoginThrottle(limits, clientIp, deadlines);
    this.sessions = new LoginSessions({
      store,
      deadlines,
      client: options.sessionClient,
      secrets: options.sessionSecrets,
      idleTtlMs: options.sessionIdleTtlMs,
      maxAgeMs: options.sessionMaxAgeMs,
      trustProxy: options.trustProxy,
    });
    this.sessionMiddleware = this.sessions.middleware;
    this.tokens = new TokenIssuer({
      store,
      limits,
      deadlines,
      sessionSecrets: options.sessionSecrets,
      sessionIdleTtlMs: options.sessionIdleTtlMs,
      sessionMaxAgeMs: options.sessionMaxAgeMs,
      wsTokenTtlMs,
      ticketTtlMs: tickets?.ttlMs ?? 0,
    });
    this.sockets = new SocketAdmission({
      store,
      limits,
      deadlines,
      clientIp,
      tickets,
      wsTokenTtlMs,
      sessionSecrets: options.sessionSecrets,
      sessionIdleTtlMs: options.sessionIdleTtlMs,
    });
  }

  /** Admits a login attempt before its check runs (`LoginThrottle.admit`). */
  admitLogin(req: Request): Promise<void> {
    return this.logins.admit(req);
  }

  /** Runs the login check on an admitted attempt; the user id (`LoginThrottle.verify`). */
  verifyLogin(req: Request, check: LoginCheck): Promise<string> {
    return this.logins.verify(req, check);
  }

  /** Starts a session for `userId` under a new id (no fixation); the old one is destroyed. */
  startSession(req: Request, userId: string): Promise<void> {
    return this.sessions.start(req, userId);
  }

  /** The id of the request's signed-in session (undefined when it has none). */
  sessionIdOf(req: Request): string | undefined {
    return this.sessions.idOf(req);
  }

  /** Destroys the request's session; returns its id when there was one. */
  endSession(req: Request): Promise<string | undefined> {
    return this.sessions.end(req);
  }

  /** The request's live session, or SESSION_REQUIRED. Needs `sessionMiddleware`. */
  currentSession(req: Request): { userId: string; expiresAt: number } {
    return this.sessions.current(req);
  }

  /**
   * Renews the idle TTL of the sessions `renew` and checks that those of `check` still
   * exist, in one store round trip; returns the ids of those that are gone.
   */
  renewSessions(renew: string[], check: string[] = []): Promise<string[]> {
    return this.sessions.renew(renew, check);
  }

  /** Mints a single-use WS token for the request's session (`TokenIssuer.issue`). */
  issueToken(req: IncomingMessage): Promise<{ token: string; expiresAt: number }> {
    return this.tokens.issue(req);
  }

  /** Mints a WS token for a session the host app vouches for (`TokenIssuer.issueFor`). */
  issueTokenFor(req: IncomingMessage, grant: HostSessionGrant): Promise<{ token: string; expiresAt: number }> {
    return this.tokens.issueFor(req, grant);
  }

  /** Ends a host-issued session; returns its session id (`TokenIssuer.endHostSession`). */
  endHostSession(sessionKey: string): Promise<string> {
    return this.tokens.endHostSession(sessionKey);
  }

  /** The free checks of a handshake, before it may spend anything shared (`SocketAdmission.screen`). */
  async screenSocket(auth: unknown, req: IncomingMessage): Promise<void> {
    this.sockets.screen(auth, req);
  }

  /** Admits a socket: consumes its credential and checks its session (`SocketAdmission.admit`). */
  admitSocket(auth: unknown, req: IncomingMessage): Promise<AdmittedSocket> {
    return this.sockets.admit(auth, req);
  }

  /** A resume ticket for a connected socket's session (none when tickets are off). */
  issueTicket(sid: string): { ticket: string; expiresAt: number } | undefined {
    return this.sockets.issueTicket(sid);
  }
}
