import { EventEmitter } from "node:events";
import { MemoryHistoryStore } from "./history-memory.js";
import { MemoryPresenceStore } from "./presence.js";
import { hostSessionJson } from "./scripts.js";
import type {
  AuthStore,
  Backend,
  ConsumedToken,
  ControlBus,
  HistoryLimits,
  HostSessionKeys,
  HostSessionPut,
  HostSessionWrite,
} from "./types.js";

interface Entry {
  value: string;
  /** Epoch ms; Infinity when the key has no TTL. */
  expiresAt: number;
}

const SWEEP_INTERVAL_MS = 30_000;

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
 * An in-process key-value store with TTLs: the subset of ioredis's string
 * commands that connect-redis and Tether's auth use. Embedded mode only.
 */
export class MemoryKeyValue {
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
  }

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }

  async get(key: string): Promise<string | null> {
    return this.live(key)?.value ?? null;
  }

  async mget(keys: string[]): Promise<(string | null)[]> {
    return keys.map((key) => this.live(key)?.value ?? null);
  }

  /** `set(key, value)`, `set(key, value, "EX", seconds)` or `set(key, value, "PX", ms)`. */
  async set(key: string, value: string, unit?: "EX" | "PX", amount?: number): Promise<"OK"> {
    const ttlMs = unit === undefined || amount === undefined ? Infinity : unit === "EX" ? amount * 1000 : amount;
    this.entries.set(key, { value, expiresAt: this.now() + ttlMs });
    return "OK";
  }

  async setnx(key: string, value: string): Promise<boolean> {
    if (this.live(key)) return false;
    this.entries.set(key, { value, expiresAt: Infinity });
    return true;
  }

  async getdel(key: string): Promise<string | null> {
    const entry = this.live(key);
    this.entries.delete(key);
    return entry?.value ?? null;
  }

  async del(keys: string | string[]): Promise<number> {
    let removed = 0;
    for (const key of Array.isArray(keys) ? keys : [keys]) {
      if (this.live(key)) removed += 1;
      this.entries.delete(key);
    }
    return removed;
  }

  async expire(key: string, seconds: number): Promise<number> {
    return this.pexpire(key, seconds * 1000);
  }

  async pexpire(key: string, ttlMs: number): Promise<number> {
    const entry = this.live(key);
    if (!entry) return 0;
    entry.expiresAt = this.now() + ttlMs;
    return 1;
  }

  async pttl(key: string): Promise<number> {
    const entry = this.live(key);
    if (!entry) return -2;
    return entry.expiresAt === Infinity ? -1 : entry.expiresAt - this.now();
  }

  /** SCAN in one page: connect-redis only uses it for `all()` / `clear()`. */
  async scan(_cursor: string, _match: "MATCH", pattern: string): Promise<[string, string[]]> {
    const prefix = pattern.endsWith("*") ? pattern.slice(0, -1) : pattern;
    const keys = [...this.entries.keys()].filter((key) => key.startsWith(prefix) && this.live(key));
    return ["0", keys];
  }

  close(): void {
    clearInterval(this.sweeper);
    this.entries.clear();
  }
}

/** The in-process twin of the Redis auth store. */
export class MemoryAuthStore implements AuthStore {
  /** Embedded mode's limits are in process (rate-limiter-flexible's memory limiter), counted by the caller. */
  readonly foldsLimits = false;

  constructor(private readonly kv: MemoryKeyValue) {}

  async getOrCreate(key: string, candidate: string): Promise<string> {
    await this.kv.setnx(key, candidate);
    return (await this.kv.get(key)) ?? candidate;
  }

  /** Same rule as the Redis script: idle TTL from now, never past the session's `capAt`. */
  private async renew(sessionKey: string, idleTtlMs: number): Promise<boolean> {
    const session = await this.kv.get(sessionKey);
    if (session === null) return false;
    const capAt = readCapAt(session);
    const ttl = capAt === undefined ? idleTtlMs : Math.min(idleTtlMs, capAt - Date.now());
    if (ttl <= 0) {
      await this.kv.del(sessionKey);
      return false;
    }
    await this.kv.pexpire(sessionKey, ttl);
    return true;
  }

  async mintToken(
    sessionKey: string,
    tokenKey: string,
    sid: string,
    tokenTtlMs: number,
    idleTtlMs: number,
  ): Promise<boolean> {
    if (!(await this.renew(sessionKey, idleTtlMs))) return false;
    await this.kv.set(tokenKey, sid, "PX", tokenTtlMs);
    return true;
  }

  async renewSessions(sessionKeys: string[], idleTtlMs: number): Promise<number[]> {
    const gone: number[] = [];
    for (const [index, key] of sessionKeys.entries()) if (!(await this.renew(key, idleTtlMs))) gone.push(index);
    return gone;
  }

  async consumeToken(tokenKey: string, sessionKeyPrefix: string): Promise<ConsumedToken> {
    const sid = await this.kv.getdel(tokenKey);
    if (sid === null) return { status: "unknown" };
    const session = await this.kv.get(sessionKeyPrefix + sid);
    return session === null ? { status: "session-gone", sid } : { status: "ok", sid, session };
  }

  async consumeTicket(nonceKey: string, ttlMs: number, sid: string, sessionKeyPrefix: string): Promise<ConsumedToken> {
    if (await this.kv.get(nonceKey)) return { status: "unknown" };
    await this.kv.set(nonceKey, "1", "PX", ttlMs);
    const session = await this.kv.get(sessionKeyPrefix + sid);
    return session === null ? { status: "session-gone", sid } : { status: "ok", sid, session };
  }

  /**
   * The host-session steps, one after another: each is several awaited key-value calls,
   * and two grants of one key interleaved there could both find the key unowned (the
   * Redis script is atomic; this makes the twin so).
   */
  private hostSteps: Promise<unknown> = Promise.resolve();

  private serially<T>(step: () => Promise<T>): Promise<T> {
    const run = this.hostSteps.then(step);
    this.hostSteps = run.catch(() => undefined);
    return run;
  }

  /** Same rules as the Redis script HOST_GRANT (see there). */
  putHostSession(keys: HostSessionKeys, grant: HostSessionWrite): Promise<HostSessionPut> {
    return this.serially(() => this.grantHostSession(keys, grant));
  }

  /** Same rules as the Redis script END_HOST_SESSION. */
  endHostSession(keys: HostSessionKeys, end: { now: number; maxAgeMs: number }): Promise<void> {
    return this.serially(() => this.endHostRecord(keys, end));
  }

  private async grantHostSession(keys: HostSessionKeys, grant: HostSessionWrite): Promise<HostSessionPut> {
    const { userId, expiresAt, now } = grant;
    const record = readHostRecord(await this.kv.get(keys.record));
    if (record.user !== undefined && record.user !== userId) return { status: "other-user" };
    const maxAt = record.maxAt ?? now + grant.maxAgeMs;
    const exp = Math.max(record.exp ?? 0, expiresAt);
    const ended = record.ended === true || (await this.kv.get(keys.legacyEnded)) !== null;
    await this.keep(
      keys.record,
      { user: userId, maxAt, exp, ended },
      Math.max(maxAt + grant.credentialTtlMs, exp) - now,
    );
    if (ended) return { status: "ended" };
    const capAt = Math.min(expiresAt, maxAt);
    if (capAt <= now) return { status: "expired" };
    await this.kv.set(keys.session, hostSessionJson(userId, capAt, now), "PX", Math.min(grant.idleTtlMs, capAt - now));
    return { status: "ok", capAt };
  }

  private async endHostRecord(keys: HostSessionKeys, end: { now: number; maxAgeMs: number }): Promise<void> {
    const record = readHostRecord(await this.kv.get(keys.record));
    const keptMs = await this.keep(
      keys.record,
      { ...record, ended: true },
      Math.max(end.maxAgeMs, (record.exp ?? 0) - end.now),
    );
    await this.kv.set(keys.legacyEnded, "1", "PX", keptMs);
    await this.kv.del(keys.session);
  }

  /** Writes a record kept at least `ms` more (its TTL only grows); returns the ms it is kept. */
  private async keep(key: string, record: HostRecord, ms: number): Promise<number> {
    const wanted = Math.max(1, Math.floor(ms));
    const ttl = await this.kv.pttl(key);
    const kept = Math.max(ttl, wanted);
    await this.kv.set(key, JSON.stringify(record), "PX", kept);
    return kept;
  }

  async deleteToken(tokenKey: string): Promise<void> {
    await this.kv.del(tokenKey);
  }
}

/** The in-process twin of the control channel: there is only this instance to tell. */
class LocalControlBus implements ControlBus {
  private readonly bus = new EventEmitter();

  async publish(message: object): Promise<void> {
    this.bus.emit("message", structuredClone(message));
  }

  async subscribe(handler: (message: unknown) => void): Promise<void> {
    this.bus.on("message", handler);
  }
}

/** Embedded mode: every store in this process. One instance only. */
export function createMemoryBackend(limits: HistoryLimits): Backend {
  const kv = new MemoryKeyValue();
  return {
    kind: "embedded",
    auth: new MemoryAuthStore(kv),
    history: new MemoryHistoryStore(limits),
    control: new LocalControlBus(),
    presence: new MemoryPresenceStore(),
    sessionClient: kv,
    ping: async () => {},
    close: async () => kv.close(),
  };
}
