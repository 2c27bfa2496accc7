import { type HostRecordGrant, type KeySteps, SteppedAuthStore } from "./auth-steps.js";
import type { MemoryKeyValue } from "./memory.js";
import type { HostSessionWrite, LimitCount, LimitCounter } from "./types.js";
import { WindowCounters } from "./window-counters.js";

function readCapAt(session: string): number | undefined {
  try {
    const capAt: unknown = (JSON.parse(session) as { capAt?: unknown }).capAt;
    return typeof capAt === "number" ? capAt : undefined;
  } catch {
    return undefined;
  }
}

/** A host-issued session's record, as the in-process store keeps it (the Redis store: a hash). */
interface HostRecord {
  user?: string;
  maxAt?: number;
  exp?: number;
  ended?: boolean;
}

function readHostRecord(json: string | null): HostRecord {
  if (json === null) return {};
  try {
    const data = JSON.parse(json) as unknown;
    return typeof data === "object" && data !== null ? (data as HostRecord) : {};
  } catch {
    return {};
  }
}

/**
 * The one-key steps in process: the twins of the Redis commands and one-key
 * scripts. Each runs synchronously on the key-value store (no await inside), so
 * each is atomic, as its Redis twin is.
 */
class MemoryKeySteps implements KeySteps {
  private readonly counters = new WindowCounters();

  constructor(private readonly kv: MemoryKeyValue) {}

  async getOrCreate(key: string, candidate: string): Promise<string> {
    const held = this.kv.read(key);
    if (held !== null) return held;
    this.kv.write(key, candidate);
    return candidate;
  }

  async get(key: string): Promise<string | null> {
    return this.kv.read(key);
  }

  async getdel(key: string): Promise<string | null> {
    const value = this.kv.read(key);
    this.kv.remove(key);
    return value;
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    this.kv.write(key, value, ttlMs);
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    if (this.kv.read(key) !== null) return false;
    this.kv.write(key, "1", ttlMs);
    return true;
  }

  async exists(key: string): Promise<boolean> {
    return this.kv.read(key) !== null;
  }

  async del(key: string): Promise<void> {
    this.kv.remove(key);
  }

  /** Same rule as the Redis script RENEW: idle TTL from now, never past the session's `capAt`. */
  async renew(sessionKey: string, idleTtlMs: number): Promise<boolean> {
    const session = this.kv.read(sessionKey);
    if (session === null) return false;
    const capAt = readCapAt(session);
    const ttl = capAt === undefined ? idleTtlMs : Math.min(idleTtlMs, capAt - Date.now());
    if (ttl <= 0) {
      this.kv.remove(sessionKey);
      return false;
    }
    this.kv.expireIn(sessionKey, ttl);
    return true;
  }

  async chargeLimit(limit: LimitCounter): Promise<number> {
    return this.counters.charge(limit);
  }

  async peekLimit(key: string): Promise<LimitCount | undefined> {
    return this.counters.peek(key);
  }

  async resetLimit(key: string): Promise<void> {
    this.counters.reset(key);
  }

  /** Same rules as the Redis script HOST_GRANT on the record alone (see there). */
  async grantHostRecord(recordKey: string, grant: HostSessionWrite, legacyEnded: boolean): Promise<HostRecordGrant> {
    const { userId, expiresAt, now } = grant;
    const record = readHostRecord(this.kv.read(recordKey));
    if (record.user !== undefined && record.user !== userId) return { status: "other-user" };
    const maxAt = record.maxAt ?? now + grant.maxAgeMs;
    const exp = Math.max(record.exp ?? 0, expiresAt);
    const ended = record.ended === true || legacyEnded;
    this.keep(recordKey, { user: userId, maxAt, exp, ended }, Math.max(maxAt + grant.credentialTtlMs, exp) - now);
    if (ended) return { status: "ended" };
    const capAt = Math.min(expiresAt, maxAt);
    if (capAt <= now) return { status: "expired" };
    return { status: "ok", capAt, ttlMs: Math.min(grant.idleTtlMs, capAt - now) };
  }

  /** Same rules as the Redis script END_HOST_SESSION on the record alone. */
  async endHostRecord(recordKey: string, now: number, maxAgeMs: number): Promise<number> {
    const record = readHostRecord(this.kv.read(recordKey));
    return this.keep(recordKey, { ...record, ended: true }, Math.max(maxAgeMs, (record.exp ?? 0) - now));
  }

  async hostRecordEnded(recordKey: string): Promise<boolean> {
    return readHostRecord(this.kv.read(recordKey)).ended === true;
  }

  /** Writes a record kept at least `ms` more (its TTL only grows); returns the ms it is kept. */
  private keep(key: string, record: HostRecord, ms: number): number {
    const kept = Math.max(this.kv.ttlOf(key), Math.max(1, Math.floor(ms)));
    this.kv.write(key, JSON.stringify(record), kept);
    return kept;
  }
}

/**
 * The in-process twin of the Redis auth store: the same one-key steps as on a
 * Redis Cluster, run in process (embedded mode).
 */
export class MemoryAuthStore extends SteppedAuthStore {
  constructor(kv: MemoryKeyValue) {
    super(new MemoryKeySteps(kv));
  }
}
