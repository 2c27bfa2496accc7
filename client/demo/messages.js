// What the demo page says, in words, for every code the SDK can report. Kept apart from
// demo.js (and free of imports) so that a Node test can check that no code is missing.

/** One short sentence per error code: the server's wire codes (ErrorCode) and the client's own (ClientErrorCode). */
export const ERROR_MESSAGES = Object.freeze({
  // The server's codes (@tether/shared ErrorCode).
  INVALID_CREDENTIALS: "Wrong API key.",
  SESSION_REQUIRED: "You are not logged in. Enter the API key to log in.",
  SESSION_EXPIRED: "Your session has ended. Log in again to reconnect.",
  TOKEN_INVALID: "The server refused the connection pass. Getting a new one.",
  ORIGIN_FORBIDDEN: "This page's address is not allowed to connect to the server.",
  RATE_LIMITED: "Too many attempts. Waiting a moment before trying again.",
  UNAVAILABLE: "The server is busy or restarting. Trying again shortly.",
  INVALID_INPUT: "The server could not accept that request.",
  PAYLOAD_TOO_LARGE: "That request is too large for the server.",
  NOT_FOUND: "The server does not know that address.",
  FORBIDDEN: "You are not allowed to do that.",
  INTERNAL: "The server ran into a problem. Trying again.",
  // The client's own codes (@tether/client ClientErrorCode).
  NETWORK_ERROR: "Can't reach the server. Check your network connection.",
  TIMEOUT: "The server is taking too long to answer.",
  BAD_RESPONSE: "The server sent an unexpected answer. A proxy may be in the way.",
  TRANSPORT_ERROR: "Can't open a connection to the server.",
  DISCONNECTED: "The connection to the server was lost.",
  NOT_CONNECTED: "Not connected to the server.",
  SHARED_CONNECTION: "This tab uses a connection shared with your other tabs.",
  UNAUTHORIZED: "You are not logged in to this site. Log in again to reconnect.",
});

/** Why the server ended the session (`session:ended`'s reason). */
export const SESSION_END_MESSAGES = Object.freeze({
  logout: "You were logged out, in this tab or another one.",
  expired: "Your session expired. Log in again.",
  revoked: "The server ended your session. Log in again.",
});

/** Why a stream could not be recovered after a reconnect (`recovery`'s reason). */
export const RECOVERY_FAILURE_MESSAGES = Object.freeze({
  trimmed: "away longer than the server keeps events",
  reset: "the server's event history was reset",
  invalid: "the position sent was not the server's",
  unknown: "no reason given",
});

/** What the connection badge says for each client state. */
export const STATE_LABELS = Object.freeze({
  connecting: "Connecting",
  connected: "Connected",
  reconnecting: "Reconnecting",
  unauthenticated: "Logged out",
  closed: "Not connected",
});

const FALLBACK = "Something went wrong.";

/** The sentence for an error (anything with a `code`), never the raw code. */
export function messageFor(error) {
  const code = error?.code;
  return (typeof code === "string" && Object.hasOwn(ERROR_MESSAGES, code) && ERROR_MESSAGES[code]) || FALLBACK;
}

/** The sentence for a `session:ended` reason. */
export function sessionEndMessage(reason) {
  return (Object.hasOwn(SESSION_END_MESSAGES, reason) && SESSION_END_MESSAGES[reason]) || SESSION_END_MESSAGES.revoked;
}

/** A few words for a recovery failure reason. */
export function recoveryFailureMessage(reason) {
  return (Object.hasOwn(RECOVERY_FAILURE_MESSAGES, reason) && RECOVERY_FAILURE_MESSAGES[reason]) || reason;
}
