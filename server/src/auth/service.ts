import type { IncomingMessage } from "node:http";
import { ErrorCode, HandshakeAuthSchema } from "@tether/shared";
import type { Request, RequestHandler } from "express";
import { TetherError } from "../errors.js";
import type { AuthStore } from "../store/types.js";
import type { TrustProxy } from "./client-ip.js";
import { Keys, tagOf } from "./keys.js";
import type { RateLimits } from "./limits.js";
import { randomSecret } from "./secrets.js";
import { createSessionMiddleware, parseStoredSession, sessionIdFromRequest } from "./sessions.js";

/** Decides who is logging in: a user id, or null to refuse. */
export type LoginCheck = (req: Request) => Promise<string | null> | string | null;

export interface AuthServiceOptions {
  store: AuthStore;
  sessionClient: object;
  sessionSecrets: string[];
  sessionIdleTtlMs: number;
  sessionMaxAgeMs: number;
  wsTokenTtlMs: number;
  limits: RateLimits;
  /** The client's IP, honouring `trust proxy`. */
  clientIp: (req: IncomingMessage) => string;
  /** Tether's `trust proxy`, for the session cookie's Secure flag. */
  trustProxy?: TrustProxy;
}

/** The identity a consumed token proves. */
export interface SocketIdentity {
  sid: string;
  userId: string;
  /** Epoch ms when the session hits its absolute cap. */
  capAt: number;
}

/**
 * All of Tether's auth: the HTTP routes and the socket handshake call these
 * methods; no auth logic lives anywhere else.
 */
export class AuthService {
  /** express-session for the routes that read or write the session itself. */
  readonly sessionMiddleware: RequestHandler;

  constructor(private readonly options: AuthServiceOptions) {
    this.sessionMiddleware = createSessionMiddleware({
      client: options.sessionClient,
      secrets: options.sessionSecrets,
      idleTtlMs: options.sessionIdleTtlMs,
      maxAgeMs: options.sessionMaxAgeMs,
      trustProxy: options.trustProxy,
    });
  }

  /** Counts a login attempt against the per-IP and global limits; RATE_LIMITED past them. */
  async checkLoginAllowed(req: Request): Promise<void> {
    await this.options.limits.consume("loginGlobal", () => "all");
    await this.options.limits.consume("login", () => this.options.clientIp(req));
  }

  /** Starts a session for `userId` under a new id (no fixation); the old one is destroyed. */
  async startSession(req: Request, userId: string): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => req.session.regenerate((err) => (err ? reject(err) : resolve())));
      req.session.userId = userId;
      req.session.capAt = Date.now() + this.options.sessionMaxAgeMs;
      req.session.cookie.maxAge = this.options.sessionMaxAgeMs;
      await new Promise<void>((resolve, reject) => req.session.save((err) => (err ? reject(err) : resolve())));
    } catch (err) {
      // A half-made session would be saved again as the error response ends, and fail again
      // after the response went out: drop it so the client gets one clean 503.
      (req as { session?: unknown }).session = undefined;
      throw err;
    }
  }

  /** Destroys the request's session; returns its id when there was one. */
  async endSession(req: Request): Promise<string | undefined> {
    if (req.session?.userId === undefined) return undefined;
    const sid = req.sessionID;
    await new Promise<void>((resolve, reject) => req.session.destroy((err) => (err ? reject(err) : resolve())));
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
   * session): one store round trip, no session load.
   */
  async issueToken(req: IncomingMessage): Promise<{ token: string; expiresAt: number }> {
    const sid = sessionIdFromRequest(req, this.options.sessionSecrets);
    if (sid === undefined) throw new TetherError(ErrorCode.SessionRequired);
    await this.options.limits.consume("token", () => tagOf(sid));
    const token = randomSecret();
    const { wsTokenTtlMs, sessionIdleTtlMs } = this.options;
    const minted = await this.options.store.mintToken(
      Keys.session(sid),
      Keys.wsToken(token),
      sid,
      wsTokenTtlMs,
      sessionIdleTtlMs,
    );
    if (!minted) throw new TetherError(ErrorCode.SessionRequired);
    return { token, expiresAt: Date.now() + wsTokenTtlMs };
  }

  /**
   * Consumes a handshake's token (unknown input) and returns who it proves:
   * TOKEN_INVALID (retryable) or SESSION_EXPIRED (log in again) otherwise.
   */
  async consumeToken(auth: unknown, req: IncomingMessage): Promise<SocketIdentity> {
    await this.options.limits.consume("handshakeIp", () => this.options.clientIp(req));
    const parsed = HandshakeAuthSchema.shape.token.safeParse(
      typeof auth === "object" && auth !== null ? (auth as { token?: unknown }).token : undefined,
    );
    if (!parsed.success) throw new TetherError(ErrorCode.TokenInvalid);
    const found = await this.options.store.consumeToken(Keys.wsToken(parsed.data), Keys.sessionPrefix);
    if (found.status === "unknown") throw new TetherError(ErrorCode.TokenInvalid);
    const session = found.status === "ok" ? parseStoredSession(found.session) : undefined;
    if (session === undefined || session.capAt <= Date.now()) throw new TetherError(ErrorCode.SessionExpired);
    await this.options.limits.consume("handshakeSession", () => tagOf(found.sid));
    return { sid: found.sid, userId: session.userId, capAt: session.capAt };
  }

  /** Renews the idle TTL of these sessions; returns the ids of those that are gone. */
  async renewSessions(sids: string[]): Promise<string[]> {
    const gone = await this.options.store.renewSessions(sids.map(Keys.session), this.options.sessionIdleTtlMs);
    return gone.flatMap((index) => sids[index] ?? []);
  }
}
