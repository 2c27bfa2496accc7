import { EventEmitter } from "node:events";
import { MemoryHistoryStore } from "./history-memory.js";
import { MemoryAuthStore } from "./memory-auth.js";
import { MemoryPresenceStore } from "./presence.js";
import { LocalTopicBus } from "./topic-bus.js";
import type { Backend, ControlBus, HistoryLimits } from "./types.js";

interface Entry {
  value: string;
  /** Epoch ms; Infinity when the key has no TTL. */
  expiresAt: number;
}

const SWEEP_INTERVAL_MS = 30_000;

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

  // The synchronous core: each call is atomic, so a step made of several (the auth
  // store's) cannot interleave with another. The ioredis-shaped commands below use it.

  /** The key's value; null when absent. */
  read(key: string): string | null {
    return this.live(key)?.value ?? null;
  }

  /** Sets the key, living `ttlMs` (Infinity: no TTL). */
  write(key: string, value: string, ttlMs = Infinity): void {
    this.entries.set(key, { value, expiresAt: this.now() + ttlMs });
  }

  /** Deletes the key; true when it was there. */
  remove(key: string): boolean {
    const had = this.live(key) !== undefined;
    this.entries.delete(key);
    return had;
  }

  /** Gives the key `ttlMs` more from now; false when it is absent. */
  expireIn(key: string, ttlMs: number): boolean {
    const entry = this.live(key);
    if (!entry) return false;
    entry.expiresAt = this.now() + ttlMs;
    return true;
  }

  /** As PTTL: the ms left, -1 with no TTL, -2 when absent. */
  ttlOf(key: string): number {
    const entry = this.live(key);
    if (!entry) return -2;
    return entry.expiresAt === Infinity ? -1 : entry.expiresAt - this.now();
  }

  async get(key: string): Promise<string | null> {
    return this.read(key);
  }

  async mget(keys: string[]): Promise<(string | null)[]> {
    return keys.map((key) => this.read(key));
  }

  /** `set(key, value)`, `set(key, value, "EX", seconds)` or `set(key, value, "PX", ms)`. */
  async set(key: string, value: string, unit?: "EX" | "PX", amount?: number): Promise<"OK"> {
    const ttlMs = unit === undefined || amount === undefined ? Infinity : unit === "EX" ? amount * 1000 : amount;
    this.write(key, value, ttlMs);
    return "OK";
  }

  async setnx(key: string, value: string): Promise<boolean> {
    if (this.live(key)) return false;
    this.write(key, value);
    return true;
  }

  async getdel(key: string): Promise<string | null> {
    const value = this.read(key);
    this.entries.delete(key);
    return value;
  }

  async del(keys: string | string[]): Promise<number> {
    let removed = 0;
    for (const key of Array.isArray(keys) ? keys : [keys]) if (this.remove(key)) removed += 1;
    return removed;
  }

  async expire(key: string, seconds: number): Promise<number> {
    return this.pexpire(key, seconds * 1000);
  }

  async pexpire(key: string, ttlMs: number): Promise<number> {
    return this.expireIn(key, ttlMs) ? 1 : 0;
  }

  async pttl(key: string): Promise<number> {
    return this.ttlOf(key);
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
    topics: new LocalTopicBus(),
    presence: new MemoryPresenceStore(),
    sessionClient: kv,
    ping: async () => {},
    close: async () => kv.close(),
  };
}
