import type { Router } from "express";
import type { Logger } from "pino";
import type { Auth } from "../auth/create.js";
import type { HttpRoutes } from "../http/create.js";
import { underBasePath } from "../http/routes.js";
import { HTTP_DEFAULTS } from "../http/settings.js";
import type { Publisher } from "../realtime/publisher.js";
import { JobRunner } from "./jobs.js";
import { jobRoutes } from "./routes.js";
import { DEMO_DEFAULTS, type JobLimits } from "./settings.js";

/** What the demo works with: it publishes like any app, behind Tether's auth. */
export interface DemoDeps {
  auth: Auth;
  publisher: Publisher;
  http: Pick<HttpRoutes, "cors" | "errors">;
  logger: Logger;
}

export interface DemoSettings {
  basePath: string;
  /** This instance: its jobs run here. */
  instanceId: string;
  /** Per-user caps; the rest from `DEMO_DEFAULTS`. */
  limits: Partial<JobLimits>;
}

/** The demo workload, mounted: `POST <base>/api/jobs`. */
export interface Demo {
  readonly router: Router;
  /** Gives running jobs up to `graceMs` to finish, then stops them (a step being retried stops retrying). */
  finish(graceMs: number): Promise<void>;
}

export function createDemo(deps: DemoDeps, settings: DemoSettings): Demo {
  const jobs = new JobRunner(deps.publisher, deps.logger, { ...DEMO_DEFAULTS, ...settings.limits });
  const router = underBasePath(
    settings.basePath,
    jobRoutes({
      auth: deps.auth.service,
      origins: deps.auth.origins,
      maxBodyBytes: HTTP_DEFAULTS.maxBodyBytes,
      cors: deps.http.cors,
      errors: deps.http.errors,
      startJob: (userId, steps, intervalMs) => jobs.start(userId, steps, intervalMs),
      instanceId: settings.instanceId,
    }),
  );
  return {
    router,
    async finish(graceMs) {
      await jobs.whenIdle(graceMs);
      jobs.stopAll();
    },
  };
}
