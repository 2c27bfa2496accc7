import { hash } from "node:crypto";

/** Redis key layout. Every key Tether writes starts with `tether:`. */
export const Keys = {
  sessionPrefix: "tether:sess:",
  session: (sid: string) => `tether:sess:${sid}`,
  wsToken: (token: string) => `tether:wstok:${token}`,
  /** A consumed resume ticket's nonce (single use). */
  ticketNonce: (nonce: string) => `tether:ticket:${nonce}`,
  /**
   * A host-issued session's record: its owner, its cap, the latest host expiry seen, and
   * whether it was ended (see `AuthService.issueTokenFor`). Outlives the session itself.
   */
  hostSession: (sid: string) => `tether:host:${sid}`,
  /**
   * The ended marker of earlier releases (before the record above): still honoured, and
   * written on every end, so instances on either release refuse an ended key during a
   * rolling upgrade.
   */
  hostSessionEnded: (sid: string) => `tether:host-ended:${sid}`,
  apiKey: "tether:apikey",
  sessionSecret: "tether:session-secret",
} as const;

/**
 * A short, stable, non-reversible tag for a secret (session id, token), for
 * room names and log correlation: secrets never appear in logs or pub/sub.
 */
export function tagOf(secret: string): string {
  // One-shot `hash`: a handshake takes a few tags, and a Hash object each cost twice as much.
  return hash("sha256", secret, "base64url").slice(0, 16);
}

/**
 * The session id of a host-issued session (`tether.issueTokenFor`): derived from the
 * host's session key, never the key itself. The `host:` prefix keeps it apart from
 * express-session's ids (base64url, no colon).
 */
export function hostSessionId(sessionKey: string): string {
  return `host:${hash("sha256", sessionKey, "base64url")}`;
}

/** The store keys of a host-issued session. */
export function hostSessionKeys(sid: string): { session: string; record: string; legacyEnded: string } {
  return { session: Keys.session(sid), record: Keys.hostSession(sid), legacyEnded: Keys.hostSessionEnded(sid) };
}

/** Socket.IO room of every socket of one login session (on every instance). */
export const sessionRoom = (sid: string) => `session:${tagOf(sid)}`;
