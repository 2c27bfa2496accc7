import { ErrorCode, Route } from "@tether/shared";
import { Router } from "express";
import { TetherError } from "../errors.js";
import type { Backend } from "../store/types.js";
import type { Metrics } from "./metrics.js";

/** Liveness (`/healthz`) and readiness (`/readyz`: the store answers and we are not draining). */
export function healthRoutes(backend: Backend, isDraining: () => boolean): Router {
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
    res.json({ status: "ready", store: backend.kind });
  });
  return router;
}

/** `GET /metrics`: Prometheus text format. */
export function metricsRoutes(metrics: Metrics): Router {
  const router = Router();
  router.get(Route.Metrics, async (_req, res) => {
    res.setHeader("Content-Type", metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });
  return router;
}
