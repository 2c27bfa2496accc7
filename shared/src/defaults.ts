/**
 * The client SDK's named defaults, with their units (overridden by its options). The
 * server's defaults live in the server, beside the module that owns each.
 */
export const CLIENT_DEFAULTS = {
  /** First reconnect delay; doubles on each failure up to the cap. */
  reconnectBaseDelayMs: 500,
  reconnectMaxDelayMs: 30_000,
  /** Give up a token request after this long and retry (never log out). */
  tokenRequestTimeoutMs: 10_000,
} as const;

/**
 * The longest time away a handshake's `auth.awayMs` is taken at: longer reports
 * count as this long (a client's clock jump or a tab asleep for days must not
 * skew the server's time-to-reconnect figures).
 */
export const MAX_REPORTED_AWAY_MS = 24 * 60 * 60 * 1000;

/**
 * The largest Socket.IO message a Tether server takes (its `maxHttpBufferSize`): past it the
 * server closes the connection. The client refuses presence data that could not fit, before
 * sending it.
 */
export const MAX_SOCKET_MESSAGE_BYTES = 64 * 1024;

/** Length of a WS token: 32 random bytes in base64url. */
export const WS_TOKEN_LENGTH = 43;
/** A WS token as the handshake accepts it: {@link WS_TOKEN_LENGTH} base64url characters. */
export const WS_TOKEN_PATTERN = new RegExp(`^[A-Za-z0-9_-]{${WS_TOKEN_LENGTH}}$`);

/** A sealed resume ticket: base64url, bounded. */
export const RESUME_TICKET_PATTERN = /^[A-Za-z0-9_-]{40,400}$/;

/** Whether a handshake's `ticket` has a sealed ticket's shape (the check every handshake makes, schema-free). */
export function isResumeTicketShaped(ticket: unknown): ticket is string {
  return typeof ticket === "string" && RESUME_TICKET_PATTERN.test(ticket);
}
