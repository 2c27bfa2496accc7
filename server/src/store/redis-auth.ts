import type { RedisClient } from "./redis-connection.js";
import { CONSUME_TOKEN, MINT_TOKEN, RENEW_SESSIONS } from "./scripts.js";
import type { AuthStore, ConsumedToken } from "./types.js";

interface Scripted {
  tetherMintToken(
    sessionKey: string,
    tokenKey: string,
    sid: string,
    tokenTtlMs: number,
    idleTtlMs: number,
  ): Promise<number>;
  tetherRenewSessions(keyCount: number, ...keysThenIdleTtl: (string | number)[]): Promise<number[]>;
  tetherRenewSession(sessionKey: string, idleTtlMs: number): Promise<number[]>;
  tetherConsumeToken(tokenKey: string, sessionKeyPrefix: string): Promise<[string, string?] | null>;
}

/**
 * The Redis auth store. On one Redis each operation is one Lua script, one
 * round trip. On a Redis Cluster a token and its session live in different
 * slots, so minting and consuming take two steps; still correct, as a session
 * deleted in between is caught when the token is consumed.
 */
export class RedisAuthStore implements AuthStore {
  private readonly client: RedisClient & Scripted;
  private readonly clustered: boolean;

  constructor(client: RedisClient) {
    client.defineCommand("tetherMintToken", { numberOfKeys: 2, lua: MINT_TOKEN });
    client.defineCommand("tetherConsumeToken", { numberOfKeys: 1, lua: CONSUME_TOKEN });
    client.defineCommand("tetherRenewSessions", { lua: RENEW_SESSIONS });
    // The same script with one fixed key, so a Redis Cluster client can route it by that key.
    client.defineCommand("tetherRenewSession", { numberOfKeys: 1, lua: RENEW_SESSIONS });
    this.client = client as RedisClient & Scripted;
    this.clustered = client.isCluster;
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
  ): Promise<boolean> {
    if (!this.clustered)
      return (await this.client.tetherMintToken(sessionKey, tokenKey, sid, tokenTtlMs, idleTtlMs)) === 1;
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

  async consumeToken(tokenKey: string, sessionKeyPrefix: string): Promise<ConsumedToken> {
    if (this.clustered) {
      const sid = await this.client.getdel(tokenKey);
      if (sid === null) return { status: "unknown" };
      const session = await this.client.get(sessionKeyPrefix + sid);
      return session === null ? { status: "session-gone", sid } : { status: "ok", sid, session };
    }
    const reply = await this.client.tetherConsumeToken(tokenKey, sessionKeyPrefix);
    if (reply === null) return { status: "unknown" };
    const [sid, session] = reply;
    return session === undefined ? { status: "session-gone", sid } : { status: "ok", sid, session };
  }

  async deleteToken(tokenKey: string): Promise<void> {
    await this.client.del(tokenKey);
  }

  private async renewOne(sessionKey: string, idleTtlMs: number): Promise<boolean> {
    return (await this.client.tetherRenewSession(sessionKey, idleTtlMs)).length === 0;
  }
}
