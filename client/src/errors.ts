import { type ErrorCode, isErrorCode, RETRYABLE } from "@tether/shared";

/** Failures the client detects itself, where the server sent no protocol code. */
export const ClientErrorCode = {
  /** The HTTP request never got a response (DNS, refused, offline, CORS). */
  Network: "NETWORK_ERROR",
  /** A request or an acknowledgement took longer than its timeout. */
  Timeout: "TIMEOUT",
  /** The server answered with an unexpected status or body (e.g. a proxy's HTML 502). */
  BadResponse: "BAD_RESPONSE",
  /** The Socket.IO transport failed to open or broke without a refusal from the server. */
  Transport: "TRANSPORT_ERROR",
  /** An established connection was lost; `message` is Socket.IO's disconnect reason. */
  Disconnected: "DISCONNECTED",
  /** The client is closed or unauthenticated, so the operation was not attempted. */
  NotConnected: "NOT_CONNECTED",
  /** The tab shares another's connection: it has no socket of its own (`client.socket`). */
  SharedConnection: "SHARED_CONNECTION",
  /**
   * The app's `getToken` said the user is not (or no longer) logged in (see
   * {@link UnauthorizedError}): the client stops reconnecting, state `"unauthenticated"`.
   */
  Unauthorized: "UNAUTHORIZED",
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Every code a {@link TetherClientError} may carry: the server's wire codes and the client's own. */
export type TetherErrorCode = ErrorCode | ClientErrorCode;

export interface TetherClientErrorInit {
  code: TetherErrorCode;
  message: string;
  /** HTTP status, when the failure came from an HTTP response. */
  status?: number | undefined;
  /** Overrides the default derived from the code. */
  retryable?: boolean | undefined;
  /** Minimum wait before trying again, from `Retry-After`. */
  retryAfterMs?: number | undefined;
  cause?: unknown;
}

/**
 * The one error type of the client SDK: rejections of `login`/`logout`/`session`/`echo`,
 * and the payload of the client's `"error"` event.
 */
export class TetherClientError extends Error {
  /** The server's code (from `{"error":{"code"}}` or a refused handshake), or a {@link ClientErrorCode}. */
  readonly code: TetherErrorCode;
  /** HTTP status when the failure came from an HTTP response, else undefined. */
  readonly status: number | undefined;
  /**
   * Whether trying the same thing again may succeed. Protocol codes follow `RETRYABLE`
   * from `@tether/shared`. The connection loop is more stubborn than this flag: it
   * retries everything except a gone session and a forbidden origin.
   */
  readonly retryable: boolean;
  /** Minimum delay before a retry, from a `Retry-After` header. */
  readonly retryAfterMs: number | undefined;

  constructor(init: TetherClientErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "TetherClientError";
    this.code = init.code;
    this.status = init.status;
    this.retryable = init.retryable ?? defaultRetryable(init.code, init.status);
    this.retryAfterMs = init.retryAfterMs;
  }
}

/**
 * What a host's `getToken` throws when its own session is gone: the client stops
 * reconnecting and its state becomes `"unauthenticated"` (log in, then `connect()`
 * again). The same as `new TetherClientError({ code: "UNAUTHORIZED", message })`.
 *
 * @example
 * getToken: async () => {
 *   const res = await fetch("/my/tether-token");
 *   if (res.status === 401) throw new UnauthorizedError();
 *   return res.json();
 * }
 */
export class UnauthorizedError extends TetherClientError {
  constructor(message = "Not logged in", options: { cause?: unknown } = {}) {
    super({ code: ClientErrorCode.Unauthorized, message, retryable: false, cause: options.cause });
    this.name = "UnauthorizedError";
  }
}

function defaultRetryable(code: TetherErrorCode, status: number | undefined): boolean {
  if (isErrorCode(code)) return RETRYABLE[code];
  if (code === ClientErrorCode.NotConnected || code === ClientErrorCode.Unauthorized) return false;
  if (code === ClientErrorCode.BadResponse && status !== undefined) {
    return status >= 500 || status === 408 || status === 429;
  }
  return true;
}
