import { Route } from "@tether/shared";
import { type ErrorRequestHandler, Router } from "express";
import type { Logger } from "pino";
import { connectionCounts, type Metrics } from "../observability/metrics.js";
import type { Realtime } from "../realtime/server.js";
import type { Backend } from "../store/types.js";
import { drainSockets } from "./drain.js";
import { healthRoutes, metricsRoutes } from "./health.js";
import { RedisSafety } from "./redis-safety.js";
import type { OpsConfig } from "./settings.js";

/** What operations watch and report on; `realtime` is undefined until `attach`. */
export interface OpsDeps {
  backend: Backend;
  metrics: Metrics;
  logger: Logger;
  /** Tether's error handler, for the ops routes' refusals. */
  errors: ErrorRequestHandler;
  realtime(): Realtime | undefined;
  /** Work that may outlive the sockets (the demo's jobs): up to `graceMs` to finish, then stopped. */
  finishWork(graceMs: number): Promise<void>;
}

/** Health, readiness, metrics, the load balancer's agent status, and the graceful stop. */
export interface Ops {
  /** `GET /healthz`, `/readyz`, `/metrics`. */
  readonly router: Router;
  readonly draining: boolean;
  agentStatus(): string;
  drain(windowMs: number, graceMs?: number): Promise<void>;
  /** Drains at once if not drained yet, and stops watching Redis. */
  close(): Promise<void>;
}

export async function createOps(
  deps: OpsDeps,
  settings: Pick<OpsConfig, "metricsKey"> & { instanceId: string },
): Promise<Ops> {
  const { backend, metrics, logger } = deps;
  // Persistence off or an evicting Redis loses what Tether stores: warn loudly, at start and after every reconnect.
  const redisSafety = backend.kind === "redis" ? new RedisSafety(backend.commands, metrics, logger) : undefined;
  await redisSafety?.check();
  redisSafety?.watch();
  let draining = false;
  // The same conditions as /readyz, for the tether_ready gauge (and the alert on it).
  metrics.measureReadiness(
    async () =>
      !draining &&
      (await backend.ping().then(
        () => true,
        () => false,
      )),
  );
  const router = Router();
  router.use(
    healthRoutes(
      backend,
      () => draining,
      // Which replica answered (behind a load balancer; and a test's probe knows it reached its own).
      () =>
        redisSafety
          ? { instance: settings.instanceId, redisConfig: redisSafety.current }
          : { instance: settings.instanceId },
    ),
  );
  router.use(metricsRoutes(metrics, settings.metricsKey));
  router.use([Route.Health, Route.Ready, Route.Metrics], deps.errors);

  async function drain(windowMs: number, graceMs = 0): Promise<void> {
    draining = true;
    const realtime = deps.realtime();
    if (realtime) await drainSockets(realtime.io, windowMs, metrics, logger);
    // Running jobs publish through the store: they may finish after the clients have moved.
    await deps.finishWork(graceMs);
  }

  return {
    router,
    get draining() {
      return draining;
    },
    agentStatus() {
      if (draining) return "drain";
      // Full: weight 0, so the load balancer sends new users elsewhere (still up: its sockets stay).
      const realtime = deps.realtime();
      if (realtime?.capacity.full || connectionCounts.full.connections || connectionCounts.full.keep_alive)
        return "up 0%";
      return `up ${realtime?.admission.weight() ?? 100}%`;
    },
    drain,
    async close() {
      if (!draining) await drain(0);
      redisSafety?.stop();
    },
  };
}
