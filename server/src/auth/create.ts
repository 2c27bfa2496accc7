import type { Logger } from "pino";
import { instrumentStore } from "../observability/instrument.js";
import type { Metrics } from "../observability/metrics.js";
import type { StoreConfig } from "../store/settings.js";
import type { Backend } from "../store/types.js";
import { clientIpResolver } from "./client-ip.js";
import { RateLimits } from "./limits.js";
import { OriginPolicy } from "./origins.js";
import { SharedSecrets } from "./secrets.js";
import { AuthService } from "./service.js";
import type { AuthConfig } from "./settings.js";
import { ResumeTickets } from "./tickets.js";

/** What auth works with. */
export interface AuthDeps {
  backend: Backend;
  metrics: Metrics;
  logger: Logger;
}

/** Auth's settings: its part of the config, and the store's deadline for each request's work. */
export type AuthSettings = AuthConfig & Pick<StoreConfig, "redisCommandTimeoutMs">;

/** Auth, wired: the one service HTTP routes and the socket handshake call, the origin rule, the secrets. */
export interface Auth {
  readonly service: AuthService;
  readonly origins: OriginPolicy;
  readonly secrets: SharedSecrets;
}

/** Resolves the shared secrets (configured, or generated once through the store) and builds auth on them. */
export async function createAuth(deps: AuthDeps, settings: AuthSettings): Promise<Auth> {
  const { backend, logger } = deps;
  const store = instrumentStore(backend.auth, "auth", deps.metrics);
  const secrets = await SharedSecrets.resolve(store, {
    apiKey: settings.apiKey,
    sessionSecrets: settings.sessionSecrets,
  });
  // Generated secrets converge if Redis loses them (in-process stores cannot).
  if (backend.kind === "redis") secrets.watch(settings.secretsCheckIntervalMs, logger, backend.commands);
  const service = new AuthService({
    store,
    sessionClient: backend.sessionClient,
    sessionSecrets: secrets.sessionSecrets,
    sessionIdleTtlMs: settings.sessionIdleTtlMs,
    sessionMaxAgeMs: settings.sessionMaxAgeMs,
    wsTokenTtlMs: settings.wsTokenTtlMs,
    tickets:
      settings.resumeTicketTtlMs > 0
        ? new ResumeTickets(secrets.sessionSecrets, settings.resumeTicketTtlMs)
        : undefined,
    storeDeadlineMs: settings.redisCommandTimeoutMs,
    limits: new RateLimits(settings.limits, store, settings.rateLimits),
    clientIp: clientIpResolver(settings.trustProxy),
    trustProxy: settings.trustProxy,
  });
  const origins = new OriginPolicy(
    settings.allowedOrigins,
    settings.trustProxy !== undefined && settings.trustProxy !== false,
  );
  return { service, origins, secrets };
}
