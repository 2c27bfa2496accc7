import cors from "cors";
import type { RequestHandler } from "express";
import helmet from "helmet";
import type { OriginPolicy } from "../auth/origins.js";

/**
 * Tether's security headers as one middleware: helmet's defaults (HSTS, nosniff,
 * X-Frame-Options, no Referer across origins, …) with a strict CSP: the page's own
 * scripts, styles and connections only. No `upgrade-insecure-requests`: TLS usually
 * ends at the load balancer, and the LB (not this app) decides whether to redirect.
 * The standalone server applies it to everything; a host app mounts it where it fits
 * (its own pages may need a wider CSP).
 *
 * @example
 * import { securityHeaders } from "@tether/server";
 * app.use(securityHeaders());
 * app.use(tether.router);
 */
export function securityHeaders(): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: true,
      directives: {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "connect-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "upgrade-insecure-requests": null,
      },
    },
  });
}

/**
 * CORS with credentials for the allowlisted origins only (when
 * TETHER_ALLOWED_ORIGINS is set); same-origin deployments need none.
 */
export function corsForAllowlist(origins: OriginPolicy): RequestHandler | undefined {
  const allowlist = origins.allowlist;
  return allowlist ? cors({ origin: allowlist, credentials: true, maxAge: 600 }) : undefined;
}
