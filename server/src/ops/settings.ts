import { isIP } from "node:net";
import { duration, type EnvOf, field, optionalKey } from "../env/values.js";

export const OPS_DEFAULTS = {
  /** On shutdown, clients are moved to other instances over this long (in jittered batches). */
  drainWindowMs: 5_000,
  /** On shutdown, the process exits by this deadline. */
  shutdownTimeoutMs: 30_000,
  /** The agent port answers only on loopback unless told otherwise (compose sets 0.0.0.0 on its private network). */
  agentHost: "127.0.0.1",
  /** The health port's checks fail once the event loop has not run for this long. */
  healthStallMs: 5_000,
} as const;

const portField = (what: string) =>
  field<number | undefined>(
    undefined,
    (text) => {
      const port = Number(text);
      return Number.isInteger(port) && port >= 1 && port <= 65_535 ? port : undefined;
    },
    `a TCP port (1-65535) ${what}`,
  );

/** The operations variables and their validation. */
export const opsEnv = {
  /** Bearer key for `GET /metrics`. Unset: /metrics is open (scrape it from a private network). */
  TETHER_METRICS_KEY: optionalKey,
  TETHER_DRAIN_WINDOW: duration(OPS_DEFAULTS.drainWindowMs),
  TETHER_SHUTDOWN_TIMEOUT: duration(OPS_DEFAULTS.shutdownTimeoutMs),
  /** Unset: no agent. A TCP port on which HAProxy's agent check reads this instance's weight. */
  TETHER_AGENT_PORT: portField("for the agent check"),
  /**
   * Unset: none. A port that answers `/healthz` and `/readyz` from a thread of its own, so that
   * a check is answered at once however busy the event loop is (point the load balancer's checks here).
   */
  TETHER_HEALTH_PORT: portField("for the health checks"),
  /** On the health port, both checks fail once the event loop has not run for this long. */
  TETHER_HEALTH_STALL: duration(OPS_DEFAULTS.healthStallMs),
  /** The address the agent and health ports bind to. */
  TETHER_AGENT_HOST: field(
    OPS_DEFAULTS.agentHost as string,
    (text) => (isIP(text) !== 0 || /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(text) ? text : undefined),
    "an IP address or a host name, such as 127.0.0.1 or 0.0.0.0",
  ),
};

/** The operations part of the configuration. */
export interface OpsConfig {
  /** Bearer key for `GET /metrics`; unset: open. */
  metricsKey: string | undefined;
  /** Port of the HAProxy agent check (this instance's weight); undefined: none. */
  agentPort: number | undefined;
  /** Address the agent and health ports bind to (`127.0.0.1` unless set: they need not face clients). */
  agentHost: string;
  /** Port of `/healthz` and `/readyz` answered off the event loop; undefined: none. */
  healthPort: number | undefined;
  /** On the health port, the checks fail once the event loop has not run for this long. */
  healthStallMs: number;
  /** On SIGTERM, clients are moved to other instances over this long. */
  drainWindowMs: number;
  /** On SIGTERM, the process exits by this deadline whatever is left. */
  shutdownTimeoutMs: number;
}

export function opsConfig(e: EnvOf<typeof opsEnv>): OpsConfig {
  return {
    metricsKey: e.TETHER_METRICS_KEY,
    agentPort: e.TETHER_AGENT_PORT,
    agentHost: e.TETHER_AGENT_HOST,
    healthPort: e.TETHER_HEALTH_PORT,
    healthStallMs: e.TETHER_HEALTH_STALL,
    drainWindowMs: e.TETHER_DRAIN_WINDOW,
    shutdownTimeoutMs: e.TETHER_SHUTDOWN_TIMEOUT,
  };
}
