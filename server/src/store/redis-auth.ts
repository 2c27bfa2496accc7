import { META_KEY_PREFIX } from "./history-redis.js";
import type { RedisClient } from "./redis-connection.js";
import {
  CONSUME_TICKET,
  CONSUME_TOKEN,
  END_HOST_SESSION,
  HOST_GRANT,
  hostSessionJson,
  MINT_TOKEN,
  RENEW_SESSIONS,
} from "./scripts.js";
import type {
  AuthStore,
  ConsumedToken,
  HostSessionKeys,
  HostSessionPut,
  HostSessionWrite,
  LimitCounter,
  MintResult,
} from "./types.js";

/** The meta key prefix of user streams (`user:<id>`), for the scripts that read a user's head. */
const USER_META_PREFIX = `${META_KEY_PREFIX}user:`;

type ConsumeReply = [sid: string, session?: string, last?: string, epoch?: string] | [limitedMs: number] | null;

function consumed(reply: ConsumeReply): ConsumedToken {
  if (reply === null) return { status: "unknown" };
  if (typeof reply[0] === "number") return { status: "limited", msBeforeNext: reply[0] };
  const [sid, session, last, epoch] = reply as [string, string?, string?, string?];
  if (session === undefined) return { status: "session-gone", sid };
  return last === undefined
    ? { status: "ok", sid, session }
    : { status: "ok", sid, session, userHead: { last, epoch: epoch ?? "" } };
}

type HostGrantReply = ["ok", capAt: number, ttlMs: number] | ["ended" | "expired" | "other-user"];

interface Scripted {
  /** The mint and consume scripts take a key count: the limits counted with them are optional keys. */
  tetherMintToken(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  tetherConsumeToken(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<ConsumeReply>;
  tetherConsumeTicket(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<ConsumeReply>;
  tetherRenewSessions(keyCount: number, ...keysThenIdleTtl: (string | number)[]): Promise<number[]>;
  tetherRenewSession(sessionKey: string, idleTtlMs: number): Promise<number[]>;
  tetherHostGrant(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<HostGrantReply>;
  tetherEndHostSession(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  tetherHostGrantRecord(recordKey: string, ...args: (string | number)[]): Promise<HostGrantReply>;
  tetherEndHostRecord(recordKey: string, now: number, maxAgeMs: number): Promise<number>;
}

function hostPut(reply: HostGrantReply): HostSessionPut {
  return reply[0] === "ok" ? { status: "ok", capAt: reply[1] } : { status: reply[0] };
}

/** Keys, then ARGV, of the limits a consume script counts. */
function limitArgs(limits: LimitCounter[]): { keys: string[]; args: number[] } {
  return {
    keys: limits.map((limit) => limit.key),
    args: limits.flatMap((limit) => [limit.points, limit.windowSeconds]),
  };
}

/**
 * The Redis auth store. On one Redis each operation is one Lua script, one
 * round trip, and the rate limits of a token request and of a handshake are
 * counted in that same script (the limiter's keys live in the same Redis). On a
 * Redis Cluster a token and its session live in different slots, so minting and
 * consuming take two steps; still correct, as a session deleted in between is
 * caught when the token is consumed; the limits are then counted apart. A host
 * session's record and the session are in different slots too: its grant checks the
 * record atomically first, then writes the session, then looks for an end again.
 */
export class RedisAuthStore implements AuthStore {
  private readonly client: RedisClient & Scripted;
  private readonly clustered: boolean;
  readonly foldsLimits: boolean;

  constructor(client: RedisClient) {
    // No fixed key count: the limits are optional keys. (Not one script per variant: ioredis
    // copies every defined script onto each auto-pipeline batch it makes, per event-loop tick.)
    client.defineCommand("tetherMintToken", { lua: MINT_TOKEN });
    client.defineCommand("tetherConsumeToken", { lua: CONSUME_TOKEN });
    client.defineCommand("tetherConsumeTicket", { lua: CONSUME_TICKET });
    client.defineCommand("tetherRenewSessions", { lua: RENEW_SESSIONS });
    client.defineCommand("tetherHostGrant", { lua: HOST_GRANT });
    client.defineCommand("tetherEndHostSession", { lua: END_HOST_SESSION });
    // The same scripts with one fixed key, so a Redis Cluster client can route them by that key.
    client.defineCommand("tetherRenewSession", { numberOfKeys: 1, lua: RENEW_SESSIONS });
    client.defineCommand("tetherHostGrantRecord", { numberOfKeys: 1, lua: HOST_GRANT });
    client.defineCommand("tetherEndHostRecord", { numberOfKeys: 1, lua: END_HOST_SESSION });
    this.client = client as RedisClient & Scripted;
    this.clustered = client.isCluster;
    this.foldsLimits = !this.clustered;
  }

  async getOrCreate(key: string, candidate: string): Promise<string> {
    const previous = await this.client.set(key, candidate, "NX", "GET");
    return previous ?? candidate;
  }

  async mintToken(
    sessionKey: string,
    tokenKey: string,
    sid: string,
    tokenTtlMs: number,
    idleTtlMs: number,
    limit?: LimitCounter,
  ): Promise<MintResult> {
    if (!this.clustered) {
      const reply = limit
        ? await this.client.tetherMintToken(
            3,
            sessionKey,
            tokenKey,
            limit.key,
            sid,
            tokenTtlMs,
            idleTtlMs,
            limit.points,
            limit.windowSeconds,
          )
        : await this.client.tetherMintToken(2, sessionKey, tokenKey, sid, tokenTtlMs, idleTtlMs);
      return reply < 0 ? { limitedMs: -reply } : reply === 1;
    }
    if ((await this.renewOne(sessionKey, idleTtlMs)) === false) return false;
    await this.client.set(tokenKey, sid, "PX", tokenTtlMs);
    return true;
  }

  async renewSessions(sessionKeys: string[], idleTtlMs: number): Promise<number[]> {
    if (sessionKeys.length === 0) return [];
    if (this.clustered) {
      const alive = await Promise.all(sessionKeys.map((key) => this.renewOne(key, idleTtlMs)));
      return alive.flatMap((ok, index) => (ok ? [] : [index]));
    }
    const gone = await this.client.tetherRenewSessions(sessionKeys.length, ...sessionKeys, idleTtlMs);
    return gone.map((index) => index - 1);
  }

  async consumeToken(tokenKey: string, sessionKeyPrefix: string, limits: LimitCounter[] = []): Promise<ConsumedToken> {
    if (this.clustered) {
      const sid = await this.client.getdel(tokenKey);
      if (sid === null) return { status: "unknown" };
      const session = await this.client.get(sessionKeyPrefix + sid);
      return session === null ? { status: "session-gone", sid } : { status: "ok", sid, session };
    }
    const { keys, args } = limitArgs(limits);
    return consumed(
      await this.client.tetherConsumeToken(
        1 + keys.length,
        tokenKey,
        ...keys,
        sessionKeyPrefix,
        USER_META_PREFIX,
        ...args,
      ),
    );
  }

  async consumeTicket(
    nonceKey: string,
    ttlMs: number,
    sid: string,
    sessionKeyPrefix: string,
    limits: LimitCounter[] = [],
  ): Promise<ConsumedToken> {
    if (this.clustered) {
      if ((await this.client.set(nonceKey, "1", "PX", ttlMs, "NX")) === null) return { status: "unknown" };
      const session = await this.client.get(sessionKeyPrefix + sid);
      return session === null ? { status: "session-gone", sid } : { status: "ok", sid, session };
    }
    const { keys, args } = limitArgs(limits);
    return consumed(
      await this.client.tetherConsumeTicket(
        1 + keys.length,
        nonceKey,
        ...keys,
        ttlMs,
        sid,
        sessionKeyPrefix,
        USER_META_PREFIX,
        ...args,
      ),
    );
  }

  async putHostSession(keys: HostSessionKeys, grant: HostSessionWrite): Promise<HostSessionPut> {
    const args = [grant.userId, grant.expiresAt, grant.now, grant.maxAgeMs, grant.idleTtlMs, grant.credentialTtlMs];
    if (!this.clustered) {
      return hostPut(await this.client.tetherHostGrant(3, keys.record, keys.session, keys.legacyEnded, ...args));
    }
    // Three slots: the record is checked and updated atomically on its own (the owner, the cap
    // and the end are decided there), then the session is written, then the end is looked for
    // again. An end marks the record before it deletes the session, so an end that landed
    // after the first step is seen here, or deletes the session after this write.
    const legacyEnded = (await this.client.exists(keys.legacyEnded)) === 1 ? "1" : "0";
    const reply = await this.client.tetherHostGrantRecord(keys.record, ...args, legacyEnded);
    const put = hostPut(reply);
    if (put.status !== "ok") return put;
    await this.client.set(keys.session, hostSessionJson(grant.userId, put.capAt, grant.now), "PX", reply[2] as number);
    const [ended] = await this.client.hmget(keys.record, "ended");
    if (ended === "1" || (await this.client.exists(keys.legacyEnded)) === 1) {
      await this.client.del(keys.session);
      return { status: "ended" };
    }
    return put;
  }

  async endHostSession(keys: HostSessionKeys, end: { now: number; maxAgeMs: number }): Promise<void> {
    if (!this.clustered) {
      await this.client.tetherEndHostSession(3, keys.record, keys.session, keys.legacyEnded, end.now, end.maxAgeMs);
      return;
    }
    // The record first (see putHostSession), then what instances of earlier releases read.
    const keptMs = await this.client.tetherEndHostRecord(keys.record, end.now, end.maxAgeMs);
    await this.client.set(keys.legacyEnded, "1", "PX", keptMs);
    await this.client.del(keys.session);
  }

  async deleteToken(tokenKey: string): Promise<void> {
    await this.client.del(tokenKey);
  }

  private async renewOne(sessionKey: string, idleTtlMs: number): Promise<boolean> {
    return (await this.client.tetherRenewSession(sessionKey, idleTtlMs)).length === 0;
  }
}
