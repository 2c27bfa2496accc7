import { ErrorCode, JobBody, type JobResponse, type LoginResponse, Route, type SessionResponse } from "@tether/shared";
import express, { type RequestHandler, Router } from "express";
import type { OriginPolicy } from "../auth/origins.js";
import type { AuthService, LoginCheck } from "../auth/service.js";
import { SESSION_COOKIE } from "../auth/sessions.js";
import { TetherError } from "../errors.js";
import type { NodeHandler } from "./token.js";

/** What the routes need from the rest of Tether. */
export interface RouteDeps {
  auth: AuthService;
  login: LoginCheck;
  origins: OriginPolicy;
  maxBodyBytes: number;
  /** `POST /api/auth/ws-token` (see http/token.ts). */
  tokenRoute: NodeHandler;
  /** Tells every instance that a session ended (its sockets get `session:ended`). */
  onSessionEnded(sid: string): void;
  /** Starts the demo job for a user; returns its id. */
  startJob(userId: string, steps: number, intervalMs: number): string;
}

/** Routes that change state refuse browsers on other origins (CSRF). */
function sameSiteOnly(origins: OriginPolicy): RequestHandler {
  return (req, _res, next) => next(origins.allows(req) ? undefined : new TetherError(ErrorCode.OriginForbidden));
}

/** The auth and job routes of the public contract. */
export function authRoutes(deps: RouteDeps): Router {
  const router = Router();
  const json = express.json({ limit: deps.maxBodyBytes, strict: true });
  const origin = sameSiteOnly(deps.origins);
  const session = deps.auth.sessionMiddleware;

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
      const userId = await deps.auth.verifyLogin(req, deps.login);
      await deps.auth.startSession(req, userId);
      res.json({ authenticated: true } satisfies LoginResponse);
    },
  );

  router.post(Route.Logout, origin, session, async (req, res) => {
    const sid = await deps.auth.endSession(req);
    if (sid !== undefined) deps.onSessionEnded(sid);
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

  router.post(Route.Jobs, origin, json, session, (req, res) => {
    const { userId } = deps.auth.currentSession(req);
    const body = JobBody.safeParse(req.body);
    if (!body.success)
      throw new TetherError(ErrorCode.InvalidInput, 'Expected {"steps": 1..10000, "intervalMs": 0..60000}.');
    const jobId = deps.startJob(userId, body.data.steps, body.data.intervalMs);
    res.status(202).json({ jobId } satisfies JobResponse);
  });

  return router;
}
