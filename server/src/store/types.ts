import type { PresenceStore } from "./presence.js";
import type { RedisClient } from "./redis-connection.js";

/**
 * What consuming a WS token (or a resume ticket) found. With the session, the
 * head of its user's stream when the store could read it in the same round trip.
 */
export type ConsumedToken =
  | { status: "unknown" }
  /** A limit counted with the consume is past its points: refused, the credential spent all the same. */
  | { status: "limited"; msBeforeNext: number }
  | { status: "session-gone"; sid: string }
  | { status: "ok"; sid: string; session: string; userHead?: StreamHead };

/**
 * One action counted under a rate limit: the counter's key, its points and its
 * window (a fixed window of `windowSeconds` from the key's first action).
 */
export interface LimitCounter {
  key: string;
  points: number;
  windowSeconds: number;
}

/** A limit's count in its current window, and the ms until that window ends. */
export interface LimitCount {
  count: number;
  msLeft: number;
}

/**
 * Where the rate limits are counted: one counter per key, holding the count and
 * expiring with its window, laid out as rate-limiter-flexible lays them out
 * (instances of earlier releases, which count with it, share the keys).
 */
export interface LimitStore {
  /** Counts one action; resolves to the ms until the window ends when the count is past the points, else 0. */
  chargeLimit(limit: LimitCounter): Promise<number>;
  /** The key's count in its current window, counting nothing; undefined when there is none. */
  peekLimit(key: string): Promise<LimitCount | undefined>;
  /** Forgets the key's count. */
  resetLimit(key: string): Promise<void>;
}

/** The store keys of one host-issued session. */
export interface HostSessionKeys {
  /** The session itself, as express-session stores one. */
  session: string;
  /** Its record: owner, cap, latest host expiry, ended. Outlives the session. */
  record: string;
  /** The ended marker of earlier releases: honoured and written, for a rolling upgrade. */
  legacyEnded: string;
}

/** One grant of a host-issued session, as the store checks and records it. */
export interface HostSessionWrite {
  userId: string;
  /** Epoch ms: the host session's expiry (bounded by the caller). */
  expiresAt: number;
  /** Epoch ms: the caller's clock, the instant of the grant. */
  now: number;
  /** Tether's max age: the first grant fixes the cap at its `now` plus this. */
  maxAgeMs: number;
  idleTtlMs: number;
  /** How long credentials bound to the session (tokens, resume tickets) can outlive its cap. */
  credentialTtlMs: number;
}

/** What a host-issued session's grant found: written (with its cap), or refused and why. */
export type HostSessionPut = { status: "ok"; capAt: number } | { status: "ended" | "expired" | "other-user" };

/** What minting found: minted, the session gone, or a limit counted with it past its points (nothing minted). */
export type MintResult = boolean | { limitedMs: number };

/**
 * The storage operations auth needs, each atomic where it must be and (on one
 * Redis) one round trip. Implemented by Redis (one Redis or a Cluster) and by an
 * in-process twin for embedded mode, alike: the limits handed to a step are
 * counted by that step on every implementation, so callers never count them apart.
 */
export interface AuthStore extends LimitStore {
  /** SET NX then GET: the value every instance agrees on for `key`. */
  getOrCreate(key: string, candidate: string): Promise<string>;
  /**
   * Counts `limit` first (past its points: nothing else happens), then renews the
   * session's idle TTL (never past its `capAt`) and stores `token → sid` with a TTL;
   * false when the session is gone.
   */
  mintToken(
    sessionKey: string,
    tokenKey: string,
    sid: string,
    tokenTtlMs: number,
    idleTtlMs: number,
    limit?: LimitCounter,
  ): Promise<MintResult>;
  /**
   * Renews the idle TTL of the first `renewing` sessions (all by default) and checks that
   * the others still exist; returns the indexes of the sessions that are gone.
   */
  renewSessions(sessionKeys: string[], idleTtlMs: number, renewing?: number): Promise<number[]>;
  /**
   * True when `renewSessions` checks each session with a command of its own (a Redis Cluster:
   * the sessions' keys live in different slots), so a caller checks each far less often
   * (`TETHER_SESSION_SWEEP_INTERVAL`); unset or false when one command checks a whole batch.
   */
  readonly checksEachSession?: boolean;
  /**
   * Deletes the token and reads the session it was bound to; the token is spent
   * exactly once. Every limit is counted, whatever the token and the other limits
   * find (a handshake over a limit still uses its token up).
   */
  consumeToken(tokenKey: string, sessionKeyPrefix: string, limits?: LimitCounter[]): Promise<ConsumedToken>;
  /**
   * Marks a resume ticket's nonce used (until `ttlMs` from now) and reads the
   * session; "unknown" when the nonce was used already. Limits as `consumeToken`.
   */
  consumeTicket(
    nonceKey: string,
    ttlMs: number,
    sid: string,
    sessionKeyPrefix: string,
    limits?: LimitCounter[],
  ): Promise<ConsumedToken>;
  /**
   * Admits a handshake by its session cookie: counts the limits (as `consumeToken`),
   * then renews the session's idle TTL (a connect is activity) and reads it. Nothing
   * is spent: "session-gone" when the session is not there or past its cap.
   */
  admitSession(
    sid: string,
    sessionKeyPrefix: string,
    idleTtlMs: number,
    limits?: LimitCounter[],
  ): Promise<ConsumedToken>;
  /**
   * Checks a host-issued session's grant against the session's record and, when it
   * holds, writes the session (as JSON, living the idle TTL, never past its cap).
   * The first grant binds the record to its user and fixes the cap at
   * `now + maxAgeMs`; the host's expiry caps it further. Refused: `other-user` (the key
   * belongs to another user's session), `ended`, `expired` (the cap has passed). The
   * record is kept as long as a credential for the session could still be presented.
   */
  putHostSession(keys: HostSessionKeys, grant: HostSessionWrite): Promise<HostSessionPut>;
  /**
   * Ends a host-issued session: marks its record ended, kept at least `maxAgeMs` and at
   * least until the latest host expiry seen, and deletes the session.
   */
  endHostSession(keys: HostSessionKeys, end: { now: number; maxAgeMs: number }): Promise<void>;
  /** Deletes a token (one whose consume failed on a store error, so it may have survived). */
  deleteToken(tokenKey: string): Promise<void>;
}

/**
 * A storage backend: Redis (shared by every instance) or embedded (one process).
 * Narrows on `kind`: only a Redis backend has Redis connections.
 */
export type Backend = RedisBackend | EmbeddedBackend;

/** Embedded mode: every store in this process. One instance only. */
export interface EmbeddedBackend extends Stores {
  readonly kind: "embedded";
}

/** Connections for one instance: commands, and a pub/sub pair for the Socket.IO adapter and events. */
export interface RedisBackend extends Stores {
  readonly kind: "redis";
  readonly commands: RedisClient;
  readonly pub: RedisClient;
  readonly sub: RedisClient;
}

/** What every backend offers. */
interface Stores {
  readonly auth: AuthStore;
  readonly history: HistoryStore;
  /** Messages between instances that must stay whole and in order (one message, one channel). */
  readonly control: ControlBus;
  /** Messages about one session (its end), heard only where it is watched: sharded pub/sub on Redis. */
  readonly topics: TopicBus;
  /** Who is in each room, across the fleet. */
  readonly presence: PresenceStore;
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

/**
 * Messages about one topic (a session's room tag), heard only by the instances
 * watching it; best effort, in publish order per topic.
 */
export interface TopicBus {
  /** Tells the instances watching `topic`; rejects while the store is unreachable (the caller retries). */
  publish(topic: string, message: object): Promise<void>;
  /**
   * Hears `topic` from now on; counted: each watch needs its unwatch. Resolves once the
   * subscription is confirmed, or its attempt failed (never rejects): it is then sent again,
   * and what the topic says must meanwhile be found another way.
   */
  watch(topic: string): Promise<void>;
  unwatch(topic: string): void;
  /** Where the messages of watched topics go (one handler). */
  listen(handler: (topic: string, message: unknown) => void): void;
  /**
   * Calls `handler` each time watched topics are heard again after a time they may not have
   * been (the subscriber connection came back, a Cluster replaced a shard's subscriber, a failed
   * subscribe went through), once the subscriptions are in place: a message published meanwhile
   * was lost, and what it said must be found another way now. `covers` says which topics (on a
   * Cluster, those of the shards concerned); undefined: every topic.
   */
  onRestored(handler: (covers: ((topic: string) => boolean) | undefined) => void): void;
}

/** One event kept in a stream. */
export interface StreamEntry {
  /** The Redis Stream id (`<ms>-<seq>`), unique and increasing within the stream. */
  id: string;
  event: string;
  /** The payload as JSON (without its offset). */
  data: string;
}

/** Where a stream stands: its newest id and its epoch. */
export interface StreamHead {
  /** The newest id ever appended, remembered after the stream expired ("0-0" when none). */
  last: string;
  /**
   * Changes when the store lost the stream (its meta data too) or rolled it back:
   * positions from another epoch cannot be resumed. "" before the first append.
   */
  epoch: string;
}

/**
 * An appended event as fanned out to every instance, in stream order. `prev`
 * (the stream's newest id before this one) lets a receiver notice a message it
 * never got: the next one's `prev` is not the last id it saw.
 */
export interface AppendedEvent extends StreamEntry {
  stream: string;
  prev: string;
  epoch: string;
}

/** What a recovery read found after an id. */
export interface StreamRead extends StreamHead {
  /** The newest id removed by trimming or expiry ("0-0" when none in this epoch). */
  maxDeleted: string;
  /** How many entries the stream holds now. */
  length: number;
  /** Entries after the id, oldest first, at most the requested count. */
  entries: StreamEntry[];
}

/** What a read back from the newest found (history on demand). */
export interface StreamPage extends StreamHead {
  /** Entries before the id asked for (or the newest), oldest first, at most the requested count. */
  entries: StreamEntry[];
  /** Whether older entries remain in the stream (ask again before the first one). */
  more: boolean;
}

/** Receives the fan-out of appended events. */
export interface HistorySubscriber {
  /** Every appended event, in stream order per stream; messages may be lost (pub/sub is at most once). */
  onEvent(event: AppendedEvent): void;
  /**
   * The subscription was re-established after a drop: messages may have been
   * lost meanwhile, so every stream must be re-read.
   */
  onResync(): void;
  /**
   * A delivery probe did not return through a subscriber connection (`node`:
   * its master on a Cluster, "" on one Redis) for `silentMs`: the connection is
   * being made to reconnect, and its reconnect resyncs (`onResync`).
   */
  onProbeLost?(node: string, silentMs: number): void;
}

/** How the fan-out subscription watches itself. */
export interface SubscribeOptions {
  /**
   * Every this long a probe goes through each subscriber connection; one that
   * does not return by the next round (or, while other messages still arrive,
   * within three rounds) means the connection stopped delivering. Unset or 0:
   * no probe (a store that cannot lose a message).
   */
  probeIntervalMs?: number;
}

/**
 * Per-target event history (Redis Streams or the in-process twin). Appending
 * also fans the event out to every instance, atomically, so every instance
 * receives events of one stream in stream order.
 */
export interface HistoryStore {
  /**
   * Appends an event (and fans it out); resolves to its id and the stream's epoch.
   * With a publish id (`options.id`) remembered on this stream from a publish within
   * the window, appends and fans out nothing and resolves to that first publish's id
   * and epoch: `duplicate` for the same event and data, `conflict` for others.
   */
  append(stream: string, event: string, data: string, options?: AppendOptions): Promise<AppendResult>;
  head(stream: string): Promise<StreamHead>;
  /**
   * Entries after id `after` (exclusive); entries older than the window (and a
   * stream idle past the window) are dropped first. At most `count` entries and,
   * when `maxBytes` is given, at most that many bytes of event names and data
   * (but always one entry when there is one): a page is complete when its last
   * entry is the stream's `last`.
   */
  readAfter(stream: string, after: string, count: number, maxBytes?: number): Promise<StreamRead>;
  /**
   * The newest entries before id `before` (exclusive; undefined: the newest of all), oldest
   * first, after the same trims as `readAfter`: at most `count` entries and, when `maxBytes`
   * is given, at most that many bytes of event names and data (but always one entry when
   * there is one). `more` says whether older entries remain.
   */
  readBefore(stream: string, before: string | undefined, count: number, maxBytes?: number): Promise<StreamPage>;
  /**
   * Evidence of a rollback: an instance delivered `seen` in `epoch`, and the
   * stream's newest id is now older. Starts a new epoch (once), so positions
   * from before cannot be resumed as if nothing was lost. Resolves to the head.
   */
  newEpochIfBehind(stream: string, epoch: string, seen: string): Promise<StreamHead>;
  /**
   * Registers the receiver of appended events of the watched streams (this
   * instance's delivery); resolves to a function that stops it (and the probe).
   */
  subscribe(subscriber: HistorySubscriber, options?: SubscribeOptions): Promise<() => void>;
  /**
   * Starts receiving a stream's appended events (its first socket here):
   * resolves once events appended from then on are sure to arrive.
   */
  watch(stream: string): Promise<void>;
  /** Stops receiving a stream's events (its last socket here left). */
  unwatch(stream: string): void;
}

/** How an append is made idempotent and durable. */
export interface AppendOptions {
  /** The publish id: the same id on the same stream within the window appends once. */
  id?: string;
  /**
   * Redis only: acknowledge once this many replicas confirmed the write (`WAIT`), waiting
   * at most `replicaTimeoutMs`; fewer rejects with a NOREPLICAS error (retry under the id).
   */
  replicas?: number;
  replicaTimeoutMs?: number;
}

/** An append's answer: the event's id and epoch, the first publish's for a known publish id. */
export interface AppendResult {
  id: string;
  epoch: string;
  /** `duplicate`/`conflict`: the publish id was known (same/other event and data); nothing appended. */
  status: "appended" | "duplicate" | "conflict";
}

/** How long and how much history is kept. */
export interface HistoryLimits {
  windowMs: number;
  maxLength: number;
  /** How long a stream's last id is remembered after the stream itself expired. */
  lastIdTtlMs: number;
}

/** The stores' clock (epoch ms). Production uses Redis `TIME`; tests inject one to step time without sleeping. */
export type Clock = () => number;
