import type { IncomingMessage } from "node:http";
import { ErrorCode } from "@tether/shared";
import { RedisStore } from "connect-redis";
import { parse as parseCookies } from "cookie";
import { unsign } from "cookie-signature";
import type { Request, RequestHandler } from "express";
import session from "express-session";
import { TetherError } from "../errors.js";
import type { AuthStore } from "../store/types.js";
import { fromTrustedProxy, type TrustProxy } from "./client-ip.js";
import { Deadline, type RequestDeadlines } from "./deadline.js";
import { Keys } from "./keys.js";

declare module "express-session" {
  interface SessionData {
    /** Who logged in: the login check's user id. */
    userId: string;
    /** Epoch ms: the absolute cap (login time + max age). Read by the renew scripts. */
    capAt: number;
  }
}

/** Name of the session cookie. */
export const SESSION_COOKIE = "tether.sid";

export interface SessionOptions {
  /** A client connect-redis accepts: ioredis or the in-process twin. */
  client: object;
  /** The first signs new cookies; all verify (rotation). */
  secrets: string[];
  idleTtlMs: number;
  maxAgeMs: number;
  /** Tether's `trust proxy`: decides whether X-Forwarded-Proto says the request is HTTPS. */
  trustProxy?: TrustProxy;
}

/** What a stored session holds. */
export interface StoredSession {
  userId: string;
  capAt: number;
}

/** Parses a session as the store holds it; undefined when it is not one of ours. */
export function parseStoredSession(json: string): StoredSession | undefined {
  try {
    const data = JSON.parse(json) as Partial<StoredSession>;
    if (typeof data.userId !== "string" || typeof data.capAt !== "number") return undefined;
    return { userId: data.userId, capAt: data.capAt };
  } catch {
    return undefined;
  }
}

/** Seconds a session should live from now: the idle TTL, never past its cap. */
function ttlSeconds(data: Partial<StoredSession>, idleTtlMs: number): number {
  const cap = typeof data.capAt === "number" ? data.capAt - Date.now() : idleTtlMs;
  return Math.ceil(Math.min(idleTtlMs, cap) / 1000);
}

/**
 * express-session over connect-redis. The cookie lives until the absolute cap;
 * the idle timeout is the store key's TTL, renewed by activity. So a user who
 * only holds a socket open keeps a valid cookie with no Set-Cookie traffic.
 */
export function createSessionMiddleware(options: SessionOptions): RequestHandler {
  const withProxy = (proxy: boolean) =>
    session({
      name: SESSION_COOKIE,
      // A store each: express-session binds its cookie settings (proxy included) to the store.
      store: new RedisStore({
        client: options.client,
        prefix: Keys.sessionPrefix,
        ttl: (data) => ttlSeconds(data as Partial<StoredSession>, options.idleTtlMs),
      }),
      secret: options.secrets,
      resave: false,
      saveUninitialized: false,
      rolling: false,
      // true: X-Forwarded-Proto says whether the request is HTTPS; false: only a TLS socket is.
      proxy,
      // Secure only when the request really is HTTPS.
      cookie: { httpOnly: true, sameSite: "lax", secure: "auto", maxAge: options.maxAgeMs, path: "/" },
    });
  // Tether's own trust decides, not the host app's express `trust proxy`: a host behind a
  // TLS-terminating proxy gets Secure cookies from TETHER_TRUST_PROXY alone, and a
  // forged X-Forwarded-Proto from an untrusted peer is ignored.
  const viaProxy = withProxy(true);
  const direct = withProxy(false);
  const trusted = fromTrustedProxy(options.trustProxy);
  return (req, res, next) => (trusted(req) ? viaProxy : direct)(req, res, next);
}

/**
 * The session id in a request's signed cookie, without loading the session:
 * the token route's fast path. Undefined when absent or not signed by a current secret.
 */
export function sessionIdFromRequest(req: IncomingMessage, secrets: string[]): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  const raw = parseCookies(header)[SESSION_COOKIE];
  if (raw === undefined || !raw.startsWith("s:")) return undefined;
  for (const secret of secrets) {
    const sid = unsign(raw.slice(2), secret);
    if (sid !== false) return sid;
  }
  return undefined;
}

/** What `LoginSessions` needs: the session middleware's options, the auth store and the request deadlines. */
export interface LoginSessionsOptions extends SessionOptions {
  store: AuthStore;
  deadlines: RequestDeadlines;
}

/**
 * Login sessions over their life: started on login, read by the routes, renewed
 * while their sockets live, ended on logout.
 */
export class LoginSessions {
  /** express-session for the routes that read or write the session itself, bounded by the request's deadline. */
  readonly middleware: RequestHandler;

  constructor(private readonly options: LoginSessionsOptions) {
    this.middleware = Deadline.bound(createSessionMiddleware(options), (req) => options.deadlines.of(req));
  }

  /** Starts a session for `userId` under a new id (no fixation); the old one is destroyed. */
  async start(req: Request, userId: string): Promise<void> {
    const deadline = this.options.deadlines.of(req);
    try {
      await deadline.run(
        new Promise<void>((resolve, reject) => req.session.regenerate((err) => (err ? reject(err) : resolve()))),
      );
      req.session.userId = userId;
      req.session.capAt = Date.now() + this.options.maxAgeMs;
      req.session.cookie.maxAge = this.options.maxAgeMs;
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

  /** The id of the request's signed-in session (undefined when it has none). */
  idOf(req: Request): string | undefined {
    return req.session?.userId === undefined ? undefined : req.sessionID;
  }

  /** Destroys the request's session; returns its id when there was one. */
  async end(req: Request): Promise<string | undefined> {
    if (req.session?.userId === undefined) return undefined;
    const sid = req.sessionID;
    await this.options.deadlines
      .of(req)
      .run(new Promise<void>((resolve, reject) => req.session.destroy((err) => (err ? reject(err) : resolve()))));
    return sid;
  }

  /** The request's live session, or SESSION_REQUIRED. Needs `middleware`. */
  current(req: Request): { userId: string; expiresAt: number } {
    const { userId, capAt } = req.session ?? {};
    if (userId === undefined || capAt === undefined) throw new TetherError(ErrorCode.SessionRequired);
    return { userId, expiresAt: Math.min(Date.now() + this.options.idleTtlMs, capAt) };
  }

  /**
   * Renews the idle TTL of the sessions `renew` (host-issued ones too) and checks that those
   * of `check` still exist, in one store call; returns the ids of those that are gone.
   */
  async renew(renew: string[], check: string[] = []): Promise<string[]> {
    const sids = [...renew, ...check];
    const gone = await this.options.store.renewSessions(sids.map(Keys.session), this.options.idleTtlMs, renew.length);
    return gone.flatMap((index) => sids[index] ?? []);
  }
}
