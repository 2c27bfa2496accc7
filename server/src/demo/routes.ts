import { ErrorCode } from "@tether/shared";
import express, { type ErrorRequestHandler, type RequestHandler, Router } from "express";
import type { OriginPolicy } from "../auth/origins.js";
import type { AuthService } from "../auth/service.js";
import { TetherError } from "../errors.js";
import { sameSiteOnly } from "../http/routes.js";
import { JOBS_ROUTE, JobBody, type JobResponse } from "./protocol.js";

/** What the demo's job route needs. */
export interface JobRouteDeps {
  auth: AuthService;
  origins: OriginPolicy;
  maxBodyBytes: number;
  cors: RequestHandler | undefined;
  errors: ErrorRequestHandler;
  /** Starts the demo job for a user and returns its id; RATE_LIMITED past the per-user limits. */
  startJob(userId: string, steps: number, intervalMs: number): string;
  /** This instance's id: the job runs here, in this process. */
  instanceId: string;
}

/** `POST /api/jobs`: the demo workload, for a signed-in user. */
export function jobRoutes(deps: JobRouteDeps): Router {
  const router = Router();
  if (deps.cors) router.use(JOBS_ROUTE, deps.cors);
  const json = express.json({ limit: deps.maxBodyBytes, strict: true });
  router.post(JOBS_ROUTE, sameSiteOnly(deps.origins), json, deps.auth.sessionMiddleware, (req, res) => {
    const { userId } = deps.auth.currentSession(req);
    const body = JobBody.safeParse(req.body);
    if (!body.success)
      throw new TetherError(ErrorCode.InvalidInput, 'Expected {"steps": 1..10000, "intervalMs": 0..60000}.');
    const jobId = deps.startJob(userId, body.data.steps, body.data.intervalMs);
    res.status(202).json({ jobId, instance: deps.instanceId } satisfies JobResponse);
  });
  router.use(JOBS_ROUTE, deps.errors);
  return router;
}
