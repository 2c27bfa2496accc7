import type { Logger } from "pino";
import type { Metrics } from "../observability/metrics.js";

/** The settings of Redis that decide whether a Redis restart or a full memory loses Tether's state. */
export const RedisCheck = { Persistence: "persistence", Eviction: "eviction" } as const;
export type RedisCheck = (typeof RedisCheck)[keyof typeof RedisCheck];

/** What the last check found, for `/readyz`'s body. */
export type RedisSafetyReport =
  | { checked: true; persistence: string; maxmemoryPolicy: string; warnings: string[] }
  | { checked: false; reason: string };

/** The part of an ioredis client (standalone or cluster) the check uses. */
export interface ConfigReader {
  call(command: string, ...args: string[]): Promise<unknown>;
  on(event: "ready", listener: () => void): unknown;
  off(event: "ready", listener: () => void): unknown;
}

/**
 * Checks at start, and again whenever the connection comes back (a failover may
 * land on a server configured otherwise), that Redis keeps what Tether stores:
 * persistence on (else a Redis restart logs everyone out and drops history) and
 * `maxmemory-policy noeviction` (else a full Redis silently drops sessions and
 * events instead of refusing writes, which Tether reports as retryable).
 * Unsafe settings are a loud warning with the fix, a metric
 * (`tether_redis_unsafe_config{check}` = 1) and a line in /readyz — not an
 * outage. Where CONFIG is refused (managed Redis, ACLs, renamed commands) it
 * says once that it could not check.
 */
export class RedisSafety {
  private report: RedisSafetyReport = { checked: false, reason: "not checked yet" };
  private saidUnchecked = false;
  private lastWarnings = "";
  private readonly recheck = () => void this.check();

  constructor(
    private readonly client: ConfigReader,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  /** The last check's findings. */
  get current(): RedisSafetyReport {
    return this.report;
  }

  /** Checks now; never throws. */
  async check(): Promise<RedisSafetyReport> {
    let values: Record<string, string>;
    try {
      const names = ["appendonly", "save", "maxmemory-policy"];
      const replies = await Promise.all(names.map((name) => this.client.call("CONFIG", "GET", name)));
      values = Object.fromEntries(names.map((name, i) => [name, configValue(replies[i], name)]));
    } catch (err) {
      const reason = (err as Error).message;
      this.report = { checked: false, reason };
      if (!this.saidUnchecked) {
        this.saidUnchecked = true;
        this.logger.warn(
          { reason },
          "could not check Redis's configuration (CONFIG GET refused or failed): make sure persistence is on (appendonly yes) and maxmemory-policy is noeviction",
        );
      }
      return this.report;
    }
    const appendOnly = values.appendonly === "yes";
    const snapshots = (values.save ?? "").trim() !== "";
    const policy = values["maxmemory-policy"] ?? "";
    const warnings: string[] = [];
    if (!appendOnly && !snapshots) {
      warnings.push(
        "Redis persistence is off (appendonly no, no save points): a Redis restart loses every session, token and missed event, and logs everyone out. Fix: run redis-server with --appendonly yes (or CONFIG SET appendonly yes, then CONFIG REWRITE).",
      );
    }
    if (policy !== "noeviction") {
      warnings.push(
        `Redis maxmemory-policy is ${policy}: when Redis is full it evicts keys, silently dropping sessions (users logged out) and event history. Fix: --maxmemory-policy noeviction (Redis then refuses writes, which Tether answers as UNAVAILABLE, retryable), and give it enough memory.`,
      );
    }
    this.metrics.redisUnsafeConfig.set({ check: RedisCheck.Persistence }, appendOnly || snapshots ? 0 : 1);
    this.metrics.redisUnsafeConfig.set({ check: RedisCheck.Eviction }, policy === "noeviction" ? 0 : 1);
    this.report = {
      checked: true,
      persistence: appendOnly ? "aof" : snapshots ? "rdb" : "off",
      maxmemoryPolicy: policy,
      warnings,
    };
    // Loud once per change, not on every reconnect.
    const key = warnings.join("\n");
    if (key !== this.lastWarnings) {
      this.lastWarnings = key;
      for (const warning of warnings) this.logger.warn(`!! ${warning}`);
    }
    return this.report;
  }

  /** Checks again whenever the connection is (re)established. */
  watch(): void {
    this.client.on("ready", this.recheck);
  }

  stop(): void {
    this.client.off("ready", this.recheck);
  }
}

/** The value in a CONFIG GET reply (`[name, value]`; RESP3 may give an object). */
function configValue(reply: unknown, name: string): string {
  if (Array.isArray(reply)) return String(reply[1] ?? "");
  if (reply && typeof reply === "object" && name in reply) return String((reply as Record<string, unknown>)[name]);
  throw new Error(`unexpected CONFIG GET ${name} reply`);
}
