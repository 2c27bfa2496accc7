import { ErrorCode, type LoginResponse, Route, type SessionResponse } from "@tether/shared";
import express, { type ErrorRequestHandler, type RequestHandler, Router } from "express";
import type { OriginPolicy } from "../auth/origins.js";
import type { AuthService, LoginCheck } from "../auth/service.js";
import { SESSION_COOKIE } from "../auth/sessions.js";
import { TetherError } from "../errors.js";
import type { NodeHandler } from "./token.js";

/** What the routes need from the rest of Tether. */
export interface RouteDeps {
  auth: AuthService;
  /** Who logs in at `POST /api/auth/login`; undefined: the route is not mounted (`login: false`). */
  login: LoginCheck | undefined;
  origins: OriginPolicy;
  maxBodyBytes: number;
  /** `POST /api/auth/ws-token` (see http/token.ts). */
  tokenRoute: NodeHandler;
  /**
   * Tells every instance that a session ended (its sockets get `session:ended`);
   * settles after the first broadcast try.
   */
  onSessionEnded(sid: string): Promise<void>;
  /** CORS for the allowlisted origins, when there is an allowlist. */
  cors: RequestHandler | undefined;
  /** Tether's error handler, applied to Tether's own paths only. */
  errors: ErrorRequestHandler;
}

/** The auth routes' paths: the only paths the auth router answers, or handles errors of. */
export const AUTH_PATHS = [Route.Login, Route.Logout, Route.Session, Route.WsToken];

/**
 * Mounts `router` under a base path (`""`: the root). Tether's routers answer their
 * own paths only, so a host's routes, errors and preflights never reach them.
 */
export function underBasePath(basePath: string, router: Router): Router {
  if (basePath === "") return router;
  const outer = Router();
  outer.use(basePath, router);
  return outer;
}

/** Routes that change state refuse browsers on other origins (CSRF). */
export function sameSiteOnly(origins: OriginPolicy): RequestHandler {
  return (req, _res, next) => next(origins.allows(req) ? undefined : new TetherError(ErrorCode.OriginForbidden));
}

/** The auth routes of the public contract: login, logout, session and ws-token. */
export function authRoutes(deps: RouteDeps): Router {
  const router = Router();
  const json = express.json({ limit: deps.maxBodyBytes, strict: true });
  const origin = sameSiteOnly(deps.origins);
  const session = deps.auth.sessionMiddleware;
  if (deps.cors) router.use(AUTH_PATHS, deps.cors);

  const { login } = deps;
  if (login)
    router.post(
      Route.Login,
      origin,
      json,
      async (req, _res, next) => {
        await deps.auth.admitLogin(req);
        next();
      },
      session,
      async (req, res) => {
        const userId = await deps.auth.verifyLogin(req, login);
        await deps.auth.startSession(req, userId);
        res.json({ authenticated: true } satisfies LoginResponse);
      },
    );

  router.post(Route.Logout, origin, session, async (req, res) => {
    // Tell every instance first, then delete the session: an instance whose liveness
    // check ran in between would otherwise end the session's sockets as "revoked".
    const sid = deps.auth.sessionIdOf(req);
    if (sid !== undefined) await deps.onSessionEnded(sid);
    await deps.auth.endSession(req);
    res.clearCookie(SESSION_COOKIE, { path: "/" });
    res.status(204).end();
  });

  router.get(Route.Session, session, (req, res) => {
    const { expiresAt } = deps.auth.currentSession(req);
    res.setHeader("Cache-Control", "no-store");
    res.json({ authenticated: true, expiresAt } satisfies SessionResponse);
  });

  // The hot path of every (re)connect: the same handler a standalone server runs before express.
  router.post(Route.WsToken, (req, res) => deps.tokenRoute(req, res));

  router.use(AUTH_PATHS, deps.errors);
  return router;
}
