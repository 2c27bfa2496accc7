/**
 * Error codes on the wire: in HTTP error bodies `{"error":{"code","message"}}`
 * and as the `message` of a refused Socket.IO handshake (`connect_error`).
 */
export const ErrorCode = {
  InvalidCredentials: "INVALID_CREDENTIALS",
  SessionRequired: "SESSION_REQUIRED",
  SessionExpired: "SESSION_EXPIRED",
  TokenInvalid: "TOKEN_INVALID",
  OriginForbidden: "ORIGIN_FORBIDDEN",
  RateLimited: "RATE_LIMITED",
  Unavailable: "UNAVAILABLE",
  InvalidInput: "INVALID_INPUT",
  PayloadTooLarge: "PAYLOAD_TOO_LARGE",
  NotFound: "NOT_FOUND",
  /** Authenticated, but not allowed (e.g. a room `canJoin` refused). */
  Forbidden: "FORBIDDEN",
  Internal: "INTERNAL",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * Whether a client should try again (with backoff) after this code.
 * Only the end of the login session, bad credentials and a forbidden origin are final.
 */
export const RETRYABLE: Readonly<Record<ErrorCode, boolean>> = {
  INVALID_CREDENTIALS: false,
  SESSION_REQUIRED: false,
  SESSION_EXPIRED: false,
  TOKEN_INVALID: true,
  ORIGIN_FORBIDDEN: false,
  RATE_LIMITED: true,
  UNAVAILABLE: true,
  INVALID_INPUT: false,
  PAYLOAD_TOO_LARGE: false,
  NOT_FOUND: false,
  FORBIDDEN: false,
  INTERNAL: true,
};

/** The codes that mean "the login session is gone: show the login screen". */
export const SESSION_GONE_CODES: ReadonlySet<ErrorCode> = new Set([
  ErrorCode.SessionRequired,
  ErrorCode.SessionExpired,
]);

const ALL_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && ALL_CODES.has(value);
}

/** `data` of a refused handshake's `connect_error`. */
export interface HandshakeErrorData {
  code: ErrorCode;
  retryable: boolean;
  /** Admission control: wait at least this long before the next attempt (spread per client). */
  retryAfterMs?: number;
}

/** Body of every HTTP error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** Why a session's sockets were told `session:ended`. */
export const SessionEndReason = {
  Logout: "logout",
  Expired: "expired",
  Revoked: "revoked",
} as const;
export type SessionEndReason = (typeof SessionEndReason)[keyof typeof SessionEndReason];
