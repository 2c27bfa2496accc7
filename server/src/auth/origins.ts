import type { IncomingMessage } from "node:http";

/** Sec-Fetch-Site values of a request from another origin, when the browser sent no Origin. */
const CROSS_ORIGIN_FETCH: ReadonlySet<string> = new Set(["cross-site", "same-site"]);

/**
 * Decides whether a browser origin may use Tether, for HTTP routes and the
 * WebSocket handshake alike. Requests without an `Origin` header pass unless
 * the browser marks them cross-site: non-browser clients send neither.
 */
export class OriginPolicy {
  private readonly allowed: ReadonlySet<string>;

  /** @param allowedOrigins exact origins; empty means same origin only. */
  constructor(
    allowedOrigins: string[],
    private readonly trustProxy: boolean,
  ) {
    this.allowed = new Set(allowedOrigins);
  }

  /** The exact allowlist, or undefined in same-origin mode (for CORS headers). */
  get allowlist(): string[] | undefined {
    return this.allowed.size > 0 ? [...this.allowed] : undefined;
  }

  /**
   * CORS response headers for an allowlisted cross-origin request (none
   * otherwise), for routes answered without express's `cors` middleware.
   */
  corsHeaders(req: IncomingMessage): Record<string, string> {
    const origin = req.headers.origin;
    if (origin === undefined || !this.allowed.has(origin)) return {};
    return { "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true", Vary: "Origin" };
  }

  allows(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    // Browsers omit Origin on some cross-site requests (no-cors GETs), but then say where
    // they come from in Sec-Fetch-Site: anything but our own origin is refused.
    if (origin === undefined) return !CROSS_ORIGIN_FETCH.has(String(req.headers["sec-fetch-site"]));
    if (this.allowed.size > 0) return this.allowed.has(origin);
    return this.isSameOrigin(origin, req);
  }

  /** Same origin: the Origin's host equals the host the request was sent to. */
  private isSameOrigin(origin: string, req: IncomingMessage): boolean {
    const forwarded = this.trustProxy ? firstValue(req.headers["x-forwarded-host"]) : undefined;
    const host = forwarded ?? req.headers.host;
    try {
      return host !== undefined && new URL(origin).host === host.toLowerCase();
    } catch {
      return false;
    }
  }
}

function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value?.split(",")[0]?.trim() || undefined;
}
