/** What consuming a WS token found. */
export type ConsumedToken =
  | { status: "unknown" }
  | { status: "session-gone"; sid: string }
  | { status: "ok"; sid: string; session: string };

/**
 * The storage operations auth needs, each one atomic and (on Redis) one round
 * trip. Implemented by Redis and by an in-process twin for embedded mode.
 */
export interface AuthStore {
  /** SET NX then GET: the value every instance agrees on for `key`. */
  getOrCreate(key: string, candidate: string): Promise<string>;
  /**
   * Renews the session's idle TTL (never past its `capAt`) and stores
   * `token → sid` with a TTL; false when the session is gone.
   */
  mintToken(sessionKey: string, tokenKey: string, sid: string, tokenTtlMs: number, idleTtlMs: number): Promise<boolean>;
  /** Renews each session's idle TTL; returns the indexes of the sessions that are gone. */
  renewSessions(sessionKeys: string[], idleTtlMs: number): Promise<number[]>;
  /** Deletes the token and reads the session it was bound to, atomically. */
  consumeToken(tokenKey: string, sessionKeyPrefix: string): Promise<ConsumedToken>;
}

/**
 * A storage backend: Redis (shared by every instance) or embedded (one process).
 */
export interface Backend {
  readonly kind: "redis" | "embedded";
  readonly auth: AuthStore;
  /** A client connect-redis accepts (ioredis or its in-process twin). */
  readonly sessionClient: object;
  /** Resolves when the backend answers, rejects (within the command timeout) otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
