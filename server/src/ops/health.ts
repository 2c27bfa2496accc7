import { ErrorCode, Route } from "@tether/shared";
import { Router } from "express";
import { TetherError } from "../errors.js";
import { requireBearer } from "../http/bearer.js";
import type { Metrics } from "../observability/metrics.js";
import type { Backend } from "../store/types.js";

/**
 * Liveness (`/healthz`) and readiness (`/readyz`: the store answers and we are not draining).
 * `details` adds to a ready answer's body (e.g. Redis configuration warnings) without changing its status.
 */
export function healthRoutes(
  backend: Backend,
  isDraining: () => boolean,
  details: () => Record<string, unknown> = () => ({}),
): Router {
  const router = Router();
  router.get(Route.Health, (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get(Route.Ready, async (_req, res) => {
    res.setHeader("Cache-Control", "no-store");
    if (isDraining()) throw new TetherError(ErrorCode.Unavailable, "This instance is shutting down.");
    try {
      await backend.ping();
    } catch (err) {
      throw new TetherError(ErrorCode.Unavailable, "Redis is unreachable.", { cause: err });
    }
    res.json({ status: "ready", store: backend.kind, ...details() });
  });
  return router;
}

/** `GET /metrics`: Prometheus text format; behind a bearer key when one is set (TETHER_METRICS_KEY). */
export function metricsRoutes(metrics: Metrics, metricsKey?: string): Router {
  const router = Router();
  if (metricsKey !== undefined) router.use(Route.Metrics, requireBearer(metricsKey, "metrics"));
  router.get(Route.Metrics, async (_req, res) => {
    res.setHeader("Content-Type", metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });
  return router;
}
