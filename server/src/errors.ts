import { type ErrorBody, ErrorCode, type HandshakeErrorData, RETRYABLE } from "@tether/shared";

export { ErrorCode };

const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  INVALID_CREDENTIALS: 401,
  SESSION_REQUIRED: 401,
  SESSION_EXPIRED: 401,
  TOKEN_INVALID: 401,
  ORIGIN_FORBIDDEN: 403,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INVALID_INPUT: 400,
  PAYLOAD_TOO_LARGE: 413,
  NOT_FOUND: 404,
  FORBIDDEN: 403,
  INTERNAL: 500,
};

const DEFAULT_MESSAGE: Readonly<Record<ErrorCode, string>> = {
  INVALID_CREDENTIALS: "The credentials are not valid.",
  SESSION_REQUIRED: "Log in first: there is no valid session.",
  SESSION_EXPIRED: "The login session has ended; log in again.",
  TOKEN_INVALID: "The token is unknown, used or expired; fetch a new one.",
  ORIGIN_FORBIDDEN: "This origin is not allowed.",
  RATE_LIMITED: "Too many requests; retry later.",
  UNAVAILABLE: "The service is temporarily unavailable; retry with backoff.",
  INVALID_INPUT: "The request is not valid.",
  PAYLOAD_TOO_LARGE: "The request body is too large.",
  NOT_FOUND: "No such route.",
  FORBIDDEN: "Not allowed.",
  INTERNAL: "Internal error.",
};

/**
 * The one error type of Tether: a wire code (`code`, an {@link ErrorCode}), a message that
 * is safe to show a client (`message`), and when to try again (`retryAfterMs`), the same
 * shape as the client's `TetherClientError`; plus the HTTP status it is answered with.
 * Anything else is normalised by `toTetherError`.
 *
 * @example
 * import { ErrorCode, TetherError } from "@tether/server";
 * throw new TetherError(ErrorCode.Forbidden, "Only the author may edit this.");
 */
export class TetherError extends Error {
  readonly status: number;
  /**
   * How long to wait before trying again, in ms, when the server knows: a rate limit's
   * window (HTTP `Retry-After`, in whole seconds), admission control's spread hint for a
   * refused handshake (`connect_error.data.retryAfterMs`).
   */
  retryAfterMs: number | undefined;

  /** @deprecated use `retryAfterMs`: the same wait, in whole seconds (at least 1). */
  get retryAfterSeconds(): number | undefined {
    return this.retryAfterMs === undefined ? undefined : Math.max(1, Math.ceil(this.retryAfterMs / 1000));
  }

  set retryAfterSeconds(seconds: number | undefined) {
    this.retryAfterMs = seconds === undefined ? undefined : seconds * 1000;
  }

  constructor(
    readonly code: ErrorCode,
    message: string = DEFAULT_MESSAGE[code],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "TetherError";
    this.status = HTTP_STATUS[code];
  }

  get retryable(): boolean {
    return RETRYABLE[this.code];
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }

  /** The error handed to a refused Socket.IO handshake: `message` is the code. */
  toHandshakeError(): Error & { data: HandshakeErrorData } {
    const data: HandshakeErrorData = { code: this.code, retryable: this.retryable };
    // Admission control's hint (UNAVAILABLE); a rate-limited handshake leaves the wait to the client's backoff.
    if (this.retryAfterMs !== undefined && this.code === ErrorCode.Unavailable) data.retryAfterMs = this.retryAfterMs;
    return Object.assign(new Error(this.code), { data });
  }
}

/**
 * Redis error replies that mean "not now" rather than "wrong": a replica that became
 * read-only after a failover, memory full, a dataset still loading, a cluster that is
 * down or resharding (or a redirect the client could not follow mid-failover), a busy
 * script, a master without replicas. Matched on the reply's
 * code (its first word), which Redis 7 keeps when the error comes from inside a script.
 */
const UNAVAILABLE_REPLY =
  /^(READONLY|OOM|LOADING|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|BUSY|NOREPLICAS|NOTREADY|MOVED|ASK)\b/;

/**
 * Failures to reach Redis at all: timeouts, closed or unwritable connections, no node answering,
 * and a pipeline's commands left unanswered when its connection closed (ioredis aborts them; a
 * failover's cut does that to a publish's `WAIT`: retried under its id, it is still once).
 */
const UNREACHABLE =
  /Command timed out|Command aborted due to connection close|Connection is closed|Stream isn't writeable|enableOfflineQueue|Redis connection is not ready|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|MaxRetriesPerRequest|Failed to refresh slots cache|None of startup nodes is available|Cluster isn't ready|Too many Cluster redirections/i;

/**
 * Is this Redis (or the network to it) being unavailable, as opposed to a bug?
 * A Lua error, a wrong type or a syntax error is a bug: INTERNAL.
 */
export function isStoreUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === "MaxRetriesPerRequestError" || err.name === "ClusterAllFailedError") return true;
  // A MULTI that Redis refused whole: judged by the errors that made it refuse.
  const { previousErrors } = err as { previousErrors?: unknown };
  if (/^EXECABORT\b/.test(err.message) && Array.isArray(previousErrors))
    return previousErrors.length > 0 && previousErrors.every(isStoreUnavailable);
  if (err.name === "ReplyError") return UNAVAILABLE_REPLY.test(err.message);
  return UNAVAILABLE_REPLY.test(err.message) || UNREACHABLE.test(err.message);
}

/** Normalises any thrown value: store outages become UNAVAILABLE, the rest INTERNAL. */
export function toTetherError(err: unknown): TetherError {
  if (err instanceof TetherError) return err;
  if (isStoreUnavailable(err)) return new TetherError(ErrorCode.Unavailable, undefined, { cause: err });
  return new TetherError(ErrorCode.Internal, undefined, { cause: err });
}
