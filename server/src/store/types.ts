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
  /** Deletes a token (one whose consume failed on a store error, so it may have survived). */
  deleteToken(tokenKey: string): Promise<void>;
}

/**
 * A storage backend: Redis (shared by every instance) or embedded (one process).
 */
export interface Backend {
  readonly kind: "redis" | "embedded";
  readonly auth: AuthStore;
  readonly history: HistoryStore;
  /** Messages between instances that must stay whole and in order (one message, one channel). */
  readonly control: ControlBus;
  /** A client connect-redis accepts (ioredis or its in-process twin). */
  readonly sessionClient: object;
  /** Resolves when the backend answers, rejects (within the command timeout) otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Tells every instance (this one included) something; delivery is best effort, in publish order. */
export interface ControlBus {
  publish(message: object): Promise<void>;
  subscribe(handler: (message: unknown) => void): Promise<void>;
}

/** One event kept in a stream. */
export interface StreamEntry {
  offset: string;
  event: string;
  /** The payload as JSON (without its offset). */
  data: string;
}

/** An event as fanned out to every instance, in stream order. */
export interface AppendedEvent extends StreamEntry {
  stream: string;
}

/** What a recovery read found after a client's offset. */
export interface StreamRead {
  /** The stream's newest id ("0-0" when nothing was ever appended). */
  last: string;
  /** The newest id removed by trimming or expiry ("0-0" when none). */
  maxDeleted: string;
  /** How many entries the stream holds now. */
  length: number;
  /** Entries after the offset, oldest first, at most the requested count. */
  entries: StreamEntry[];
}

/**
 * Per-target event history (Redis Streams or the in-process twin). Appending
 * also fans the event out to every instance, atomically, so every instance
 * receives events of one stream in stream order.
 */
export interface HistoryStore {
  append(stream: string, event: string, data: string): Promise<string>;
  /** The stream's newest id, remembered for a while after the stream expired ("0-0" when none). */
  lastId(stream: string): Promise<string>;
  /** Entries after `after` (exclusive); entries older than the window are dropped first. */
  readAfter(stream: string, after: string, count: number): Promise<StreamRead>;
  /** Registers the receiver of every appended event (this instance's delivery). */
  subscribe(handler: (event: AppendedEvent) => void): Promise<void>;
}

/** How long and how much history is kept. */
export interface HistoryLimits {
  windowMs: number;
  maxLength: number;
  /** How long a stream's last id is remembered after the stream itself expired. */
  lastIdTtlMs: number;
}
