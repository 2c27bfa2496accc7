import { CLIENT_DEFAULTS } from "@tether/shared";
import { TetherClientImpl } from "./client.js";
import { fetchResolver, isBrowser } from "./cookies.js";
import { TetherHttp } from "./http.js";
import type { TetherClient, TetherClientOptions } from "./types.js";

export type {
  JobDonePayload,
  JobProgressPayload,
  Offset,
  RecoveryPayload,
  SessionEndedPayload,
  WelcomePayload,
} from "@tether/shared";
export { ErrorCode, SessionEndReason } from "@tether/shared";
export type { FetchLike } from "./cookies.js";
export { ClientErrorCode, TetherClientError, type TetherErrorCode } from "./errors.js";
export type {
  AckResult,
  ClientOwnEvents,
  EmitArgs,
  PassThroughSocketOptions,
  TetherClient,
  TetherClientEvents,
  TetherClientOptions,
  TetherSocket,
  TetherState,
} from "./types.js";

/** Default of `ackTimeoutMs`. */
const ACK_TIMEOUT_MS = 10_000;
/** Default of `staleAfterMs`: the server's default pingInterval + pingTimeout. */
const STALE_AFTER_MS = 45_000;

/**
 * Creates a Tether client. Nothing happens on the network until `login`, `session`
 * or `connect` is called; the state starts as `"closed"`.
 *
 * The connection fetches a fresh single-use token (`POST /api/auth/ws-token`) before
 * every connect and reconnect, reconnects on its own with exponential backoff and
 * jitter, and resumes the event stream from `lastOffset`. It gives up only when the
 * server says the login session is gone (state `"unauthenticated"`) or the origin is
 * forbidden (state `"closed"`, with an `"error"` event); it never logs out on an error.
 *
 * @example
 * import { createTetherClient } from "@tether/client";
 *
 * const client = createTetherClient({ url: "http://127.0.0.1:3000" });
 * client.on("state", (state) => console.log("state:", state));
 * client.on("job:progress", ({ step, steps }) => console.log(`${step}/${steps}`));
 * client.on("error", (err) => console.warn(err.code, err.message));
 *
 * await client.login(process.env.TETHER_API_KEY ?? "");
 * client.connect();
 * // later: await client.echo({ hello: "world" }); await client.logout();
 */
export function createTetherClient(options: TetherClientOptions = {}): TetherClient {
  const timeoutMs = options.tokenRequestTimeoutMs ?? CLIENT_DEFAULTS.tokenRequestTimeoutMs;
  const origin = resolveOrigin(options.url);
  const basePath = normaliseBasePath(options.basePath);
  return new TetherClientImpl({
    origin,
    socketPath: `${basePath}/socket.io/`,
    http: new TetherHttp({ origin, basePath, fetch: fetchResolver(options.fetch), timeoutMs }),
    transports: options.transports ?? ["websocket", "polling"],
    reconnectBaseDelayMs: options.reconnectBaseDelayMs ?? CLIENT_DEFAULTS.reconnectBaseDelayMs,
    reconnectMaxDelayMs: options.reconnectMaxDelayMs ?? CLIENT_DEFAULTS.reconnectMaxDelayMs,
    ackTimeoutMs: options.ackTimeoutMs ?? ACK_TIMEOUT_MS,
    staleAfterMs: options.staleAfterMs ?? STALE_AFTER_MS,
    socketOptions: options.socketOptions ?? {},
    random: options.random ?? Math.random,
    resumeTickets: options.resumeTickets ?? true,
  });
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
