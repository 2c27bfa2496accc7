import { ErrorCode, Route } from "@tether/shared";
import { type RequestHandler, Router } from "express";
import { safeEqual } from "../auth/secrets.js";
import { TetherError } from "../errors.js";
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

/** Lets through requests with `Authorization: Bearer <key>`; 401 INVALID_CREDENTIALS otherwise. */
function bearerKey(key: string): RequestHandler {
  return (req, res, next) => {
    const header = req.headers.authorization ?? "";
    const given = header.startsWith("Bearer ") ? header.slice("Bearer ".length) : "";
    if (given !== "" && safeEqual(given, key)) return next();
    res.setHeader("WWW-Authenticate", 'Bearer realm="metrics"');
    next(new TetherError(ErrorCode.InvalidCredentials));
  };
}

/** `GET /metrics`: Prometheus text format; behind a bearer key when one is set (TETHER_METRICS_KEY). */
export function metricsRoutes(metrics: Metrics, metricsKey?: string): Router {
  const router = Router();
  if (metricsKey !== undefined) router.use(Route.Metrics, bearerKey(metricsKey));
  router.get(Route.Metrics, async (_req, res) => {
    res.setHeader("Content-Type", metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });
  return router;
}
