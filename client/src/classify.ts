import { ErrorCode, isErrorCode, SESSION_GONE_CODES } from "@tether/shared";
import { ClientErrorCode, TetherClientError } from "./errors.js";

/** What the connection loop does after a failed attempt. */
export type FailureAction =
  /** Try again after the server's hint (`hintMs`) when it gave one, else after the backoff delay. */
  | { kind: "retry"; hintMs: number | undefined }
  /** The login session is gone: stop, and wait for a new login. */
  | { kind: "unauthenticated" }
  /** Final for this client (a forbidden origin): stop. */
  | { kind: "closed" };

/**
 * Decides what a failure means. Only a definitive word ends the loop: a gone session
 * (SESSION_REQUIRED / SESSION_EXPIRED, from a 401 or a refused handshake; UNAUTHORIZED from the host's `getToken`)
 * and a forbidden origin (from a 403 or a refused handshake). Everything else — network
 * errors, timeouts, 5xx, 429, UNAVAILABLE, TOKEN_INVALID, transport errors, unexpected
 * bodies — is retried, because none of it proves the session is gone.
 */
export function classifyFailure(error: TetherClientError): FailureAction {
  const { code, status } = error;
  if (isErrorCode(code) && SESSION_GONE_CODES.has(code) && (status === undefined || status === 401)) {
    return { kind: "unauthenticated" };
  }
  // The host's getToken said its own session is gone (UnauthorizedError).
  if (code === ClientErrorCode.Unauthorized) return { kind: "unauthenticated" };
  if (code === ErrorCode.OriginForbidden && (status === undefined || status === 403)) return { kind: "closed" };
  return { kind: "retry", hintMs: error.retryAfterMs };
}

/** An HTTP error response as a client error; `body` is the parsed JSON, or undefined. */
export function errorFromResponse(
  status: number,
  body: unknown,
  retryAfter: string | null,
  now: number = Date.now(),
): TetherClientError {
  const wire = wireError(body);
  const retryAfterMs = parseRetryAfter(retryAfter, now);
  if (wire) return new TetherClientError({ code: wire.code, message: wire.message, status, retryAfterMs });
  return new TetherClientError({
    code: ClientErrorCode.BadResponse,
    message: `Unexpected HTTP ${status} response`,
    status,
    retryAfterMs,
  });
}

/** A fetch that threw: our timeout, or the network. */
export function errorFromFetchFailure(cause: unknown, timedOut: boolean, timeoutMs: number): TetherClientError {
  if (timedOut) {
    return new TetherClientError({
      code: ClientErrorCode.Timeout,
      message: `No response within ${timeoutMs} ms`,
      cause,
    });
  }
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new TetherClientError({ code: ClientErrorCode.Network, message: `Request failed: ${detail}`, cause });
}

/** A server's retry hint is honoured up to this long (a broken hint must not park a client). */
const MAX_RETRY_AFTER_MS = 60_000;

/**
 * A Socket.IO `connect_error`. A refusal by the server's middleware carries
 * `data: { code, retryable }`; anything without it (engine/transport errors,
 * timeouts) is a transport error.
 */
export function errorFromConnectError(err: Error & { data?: unknown }): TetherClientError {
  const data = err.data;
  if (typeof data === "object" && data !== null) {
    const { code, retryable, retryAfterMs } = data as { code?: unknown; retryable?: unknown; retryAfterMs?: unknown };
    if (isErrorCode(code)) {
      return new TetherClientError({
        code,
        message: `Handshake refused: ${code}`,
        retryable: typeof retryable === "boolean" ? retryable : undefined,
        // Admission control spreads its hints; the client's own backoff jitter comes on top.
        retryAfterMs:
          typeof retryAfterMs === "number" && Number.isFinite(retryAfterMs) && retryAfterMs > 0
            ? Math.min(retryAfterMs, MAX_RETRY_AFTER_MS)
            : undefined,
        cause: err,
      });
    }
  }
  return new TetherClientError({
    code: ClientErrorCode.Transport,
    message: `Connection failed: ${err.message}`,
    cause: err,
  });
}

/** `Retry-After` (delta seconds or an HTTP date) in ms, or undefined. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // HTTP dates start with a day name; Date.parse alone would accept "-5" as a year.
  const date = /^[A-Za-z]/.test(trimmed) ? Date.parse(trimmed) : Number.NaN;
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function wireError(body: unknown): { code: ErrorCode; message: string } | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const error = (body as { error?: unknown }).error;
  if (typeof error !== "object" || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (!isErrorCode(code)) return undefined;
  return { code, message: typeof message === "string" && message !== "" ? message : code };
}
