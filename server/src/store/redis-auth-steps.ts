import type { HostRecordGrant, KeySteps } from "./auth-steps.js";
import type { RedisClient } from "./redis-connection.js";
import { CHARGE_LIMIT, END_HOST_SESSION, HOST_GRANT, RENEW_SESSIONS } from "./scripts.js";
import type { HostSessionWrite, LimitCount, LimitCounter } from "./types.js";

/** HOST_GRANT's reply: the cap and the session's TTL, or why the grant was refused. */
export type HostGrantReply = ["ok", capAt: number, ttlMs: number] | ["ended" | "expired" | "other-user"];

function hostGranted(reply: HostGrantReply): HostRecordGrant {
  return reply[0] === "ok" ? { status: "ok", capAt: reply[1], ttlMs: reply[2] } : { status: reply[0] };
}

/** HOST_GRANT's ARGV, in order (the one-key form adds the ended marker it found). */
export function hostGrantArgs(grant: HostSessionWrite): (string | number)[] {
  return [grant.userId, grant.expiresAt, grant.now, grant.maxAgeMs, grant.idleTtlMs, grant.credentialTtlMs];
}

interface OneKeyScripts {
  tetherChargeLimit(limitKey: string, points: number, windowSeconds: number): Promise<number>;
  tetherRenewSession(sessionKey: string, idleTtlMs: number): Promise<number[]>;
  tetherHostGrantRecord(recordKey: string, ...args: (string | number)[]): Promise<HostGrantReply>;
  tetherEndHostRecord(recordKey: string, now: number, maxAgeMs: number): Promise<number>;
}

/**
 * The one-key steps on Redis: commands, and scripts with one fixed key, so a
 * Redis Cluster client routes each by that key.
 */
export class RedisKeySteps implements KeySteps {
  private readonly client: RedisClient & OneKeyScripts;

  constructor(client: RedisClient) {
    client.defineCommand("tetherChargeLimit", { numberOfKeys: 1, lua: CHARGE_LIMIT });
    client.defineCommand("tetherRenewSession", { numberOfKeys: 1, lua: RENEW_SESSIONS });
    client.defineCommand("tetherHostGrantRecord", { numberOfKeys: 1, lua: HOST_GRANT });
    client.defineCommand("tetherEndHostRecord", { numberOfKeys: 1, lua: END_HOST_SESSION });
    this.client = client as RedisClient & OneKeyScripts;
  }

  async getOrCreate(key: string, candidate: string): Promise<string> {
    return (await this.client.set(key, candidate, "NX", "GET")) ?? candidate;
  }

  get(key: string): Promise<string | null> {
    return this.client.get(key);
  }

  getdel(key: string): Promise<string | null> {
    return this.client.getdel(key);
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    await this.client.set(key, value, "PX", ttlMs);
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    return (await this.client.set(key, "1", "PX", ttlMs, "NX")) !== null;
  }

  async exists(key: string): Promise<boolean> {
    return (await this.client.exists(key)) === 1;
  }

  async del(key: string): Promise<void> {
    await this.client.del(key);
  }

  async renew(sessionKey: string, idleTtlMs: number): Promise<boolean> {
    return (await this.client.tetherRenewSession(sessionKey, idleTtlMs)).length === 0;
  }

  chargeLimit(limit: LimitCounter): Promise<number> {
    return this.client.tetherChargeLimit(limit.key, limit.points, limit.windowSeconds);
  }

  /** GET and PTTL in one MULTI, as rate-limiter-flexible reads a count. */
  async peekLimit(key: string): Promise<LimitCount | undefined> {
    const replies = (await this.client.multi().get(key).pttl(key).exec()) ?? [];
    const failed = replies.find(([err]) => err !== null)?.[0];
    if (failed) throw failed;
    const [[, count], [, ttl]] = replies as [[null, string | null], [null, number]];
    return count === null ? undefined : { count: Number.parseInt(count, 10), msLeft: ttl };
  }

  async resetLimit(key: string): Promise<void> {
    await this.client.del(key);
  }

  async grantHostRecord(recordKey: string, grant: HostSessionWrite, legacyEnded: boolean): Promise<HostRecordGrant> {
    const args = [...hostGrantArgs(grant), legacyEnded ? "1" : "0"];
    return hostGranted(await this.client.tetherHostGrantRecord(recordKey, ...args));
  }

  endHostRecord(recordKey: string, now: number, maxAgeMs: number): Promise<number> {
    return this.client.tetherEndHostRecord(recordKey, now, maxAgeMs);
  }

  async hostRecordEnded(recordKey: string): Promise<boolean> {
    return (await this.client.hget(recordKey, "ended")) === "1";
  }
}
