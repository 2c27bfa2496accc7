import { CLIENT_DEFAULTS } from "@tether/shared";
import type { ManagerOptions } from "socket.io-client";
import { type CookieJarWrapper, fetchResolver, isBrowser, sendsCookiesWithHandshake } from "./cookies.js";
import { TetherHttp } from "./http.js";
import { ClientLog } from "./logger.js";
import { type OffsetStore, sessionOffsetStore } from "./offset-book.js";
import type { PassThroughSocketOptions, TetherClientOptions } from "./types.js";

/** Everything a connection needs, with defaults already applied. */
export interface ClientConfig {
  origin: string;
  /** The Socket.IO path, e.g. `/socket.io/` (`socketOptions.path` overrides it). */
  socketPath: string;
  http: TetherHttp;
  transports: NonNullable<ManagerOptions["transports"]>;
  reconnectBaseDelayMs: number;
  reconnectMaxDelayMs: number;
  ackTimeoutMs: number;
  staleAfterMs: number;
  socketOptions: PassThroughSocketOptions;
  random: () => number;
  resumeTickets: boolean;
  /** Sign a connect that has no ticket in by the session cookie (`auth.cookie`) before fetching a token. */
  cookieHandshake: boolean;
  /** The host's token source; undefined: `POST /api/auth/ws-token`. */
  getToken: (() => Promise<{ token: string; expiresAt?: number }>) | undefined;
  /** The host's token route (`tokenUrl`), absolute; undefined: `getToken` or Tether's route. */
  tokenUrl: string | undefined;
  /** How long a wake-up check waits for the server's answer before replacing the socket. */
  wakeCheckTimeoutMs: number;
  /** Listen to the page's own wake-ups (`online`, visible, `pageshow`); off where tabs report them instead. */
  watchWake: boolean;
  /** Where offsets survive a reload; undefined: memory only. */
  offsetStore: OffsetStore | undefined;
  /** The app's logger (none by default). */
  log: ClientLog;
}

/** Default of `ackTimeoutMs`. */
const ACK_TIMEOUT_MS = 10_000;
/** Default of `staleAfterMs`: the server's default pingInterval + pingTimeout. */
const STALE_AFTER_MS = 45_000;
/** Default of `wakeCheckTimeoutMs`. */
const WAKE_CHECK_TIMEOUT_MS = 3_000;

/** The connection's settings: the options with their defaults applied. */
export function connectionConfig(
  options: TetherClientOptions,
  withCookieJar: CookieJarWrapper | undefined,
): ClientConfig {
  const timeoutMs = options.tokenRequestTimeoutMs ?? CLIENT_DEFAULTS.tokenRequestTimeoutMs;
  if (options.getToken !== undefined && options.tokenUrl !== undefined)
    throw new TypeError("createTetherClient: give `getToken` or `tokenUrl`, not both");
  const origin = resolveOrigin(options.url);
  const basePath = normaliseBasePath(options.basePath);
  return {
    origin,
    socketPath: `${basePath}/socket.io/`,
    http: new TetherHttp({ origin, basePath, fetch: fetchResolver(options.fetch, withCookieJar), timeoutMs }),
    transports: options.transports ?? ["websocket", "polling"],
    reconnectBaseDelayMs: options.reconnectBaseDelayMs ?? CLIENT_DEFAULTS.reconnectBaseDelayMs,
    reconnectMaxDelayMs: options.reconnectMaxDelayMs ?? CLIENT_DEFAULTS.reconnectMaxDelayMs,
    ackTimeoutMs: options.ackTimeoutMs ?? ACK_TIMEOUT_MS,
    staleAfterMs: options.staleAfterMs ?? STALE_AFTER_MS,
    socketOptions: options.socketOptions ?? {},
    random: options.random ?? Math.random,
    resumeTickets: options.resumeTickets ?? true,
    cookieHandshake:
      options.cookieHandshake ??
      (sendsCookiesWithHandshake() &&
        options.getToken === undefined &&
        options.tokenUrl === undefined &&
        options.fetch === undefined),
    getToken: options.getToken,
    tokenUrl: options.tokenUrl === undefined ? undefined : resolveTokenUrl(options.tokenUrl, origin),
    wakeCheckTimeoutMs: options.wakeCheckTimeoutMs ?? WAKE_CHECK_TIMEOUT_MS,
    watchWake: true,
    log: new ClientLog(options.logger, options.logLevel),
    offsetStore:
      isBrowser() && (options.persistOffsets ?? true) ? sessionOffsetStore(offsetKey(origin, basePath)) : undefined,
  };
}

/** `""`, or a path such as `/tether`: a leading slash, no trailing one. */
function normaliseBasePath(basePath: string | undefined): string {
  const trimmed = (basePath ?? "").trim().replace(/\/+$/, "");
  if (trimmed === "") return "";
  return trimmed.startsWith("/") ? trimmed : `/${trimmed}`;
}

function resolveOrigin(url: string | undefined): string {
  if (url === undefined) {
    if (isBrowser()) return location.origin;
    throw new TypeError("createTetherClient: `url` is required outside a browser");
  }
  const base = isBrowser() ? location.href : undefined;
  return new URL(url, base).origin;
}

/** The host's token route, absolute: relative to the page in a browser, else to the server's origin. */
function resolveTokenUrl(tokenUrl: string | URL, origin: string): string {
  return new URL(tokenUrl, isBrowser() ? location.href : origin).href;
}

/** The storage key of a Tether server's offsets: one per server a page talks to. */
function offsetKey(origin: string, basePath: string): string {
  return `tether:offsets:${origin}${basePath}`;
}
