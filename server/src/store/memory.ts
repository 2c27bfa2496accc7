import { EventEmitter } from "node:events";
import { MemoryHistoryStore } from "./history-memory.js";
import { MemoryPresenceStore } from "./presence.js";
import type { AuthStore, Backend, ConsumedToken, ControlBus, HistoryLimits } from "./types.js";

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

  async putHostSession(sessionKey: string, endedKey: string, session: string, ttlMs: number): Promise<boolean> {
    if ((await this.kv.get(endedKey)) !== null) return false;
    await this.kv.set(sessionKey, session, "PX", ttlMs);
    return true;
  }

  async endHostSession(sessionKey: string, endedKey: string, endedTtlMs: number): Promise<void> {
    await this.kv.set(endedKey, "1", "PX", endedTtlMs);
    await this.kv.del(sessionKey);
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
