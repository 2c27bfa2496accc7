import { SteppedAuthStore } from "./auth-steps.js";
import { META_KEY_PREFIX } from "./history-redis.js";
import { type HostGrantReply, hostGrantArgs, RedisKeySteps } from "./redis-auth-steps.js";
import type { RedisClient } from "./redis-connection.js";
import { CONSUME_TICKET, CONSUME_TOKEN, END_HOST_SESSION, HOST_GRANT, MINT_TOKEN, RENEW_SESSIONS } from "./scripts.js";
import type {
  AuthStore,
  ConsumedToken,
  HostSessionKeys,
  HostSessionPut,
  HostSessionWrite,
  LimitCount,
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

/** Keys, then ARGV, of the limits a consume script counts. */
function limitArgs(limits: LimitCounter[]): { keys: string[]; args: number[] } {
  return {
    keys: limits.map((limit) => limit.key),
    args: limits.flatMap((limit) => [limit.points, limit.windowSeconds]),
  };
}

interface MultiKeyScripts {
  /** These scripts take a key count: the limits counted with them are optional keys. */
  tetherMintToken(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  tetherConsumeToken(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<ConsumeReply>;
  tetherConsumeTicket(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<ConsumeReply>;
  tetherRenewSessions(keyCount: number, ...keysThenIdleTtl: (string | number)[]): Promise<number[]>;
  tetherHostGrant(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<HostGrantReply>;
  tetherEndHostSession(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<number>;
}

/**
 * The auth store on one Redis: each operation's steps in one script, one atomic
 * round trip, the limits counted inside it; the one-key operations as on a Cluster.
 */
class OneScriptAuthStore extends SteppedAuthStore {
  private readonly client: RedisClient & MultiKeyScripts;

  constructor(client: RedisClient) {
    super(new RedisKeySteps(client));
    // No fixed key count: the limits are optional keys. (Not one script per variant: ioredis
    // copies every defined script onto each auto-pipeline batch it makes, per event-loop tick.)
    client.defineCommand("tetherMintToken", { lua: MINT_TOKEN });
    client.defineCommand("tetherConsumeToken", { lua: CONSUME_TOKEN });
    client.defineCommand("tetherConsumeTicket", { lua: CONSUME_TICKET });
    client.defineCommand("tetherRenewSessions", { lua: RENEW_SESSIONS });
    client.defineCommand("tetherHostGrant", { lua: HOST_GRANT });
    client.defineCommand("tetherEndHostSession", { lua: END_HOST_SESSION });
    this.client = client as RedisClient & MultiKeyScripts;
  }

  override async mintToken(
    sessionKey: string,
    tokenKey: string,
    sid: string,
    tokenTtlMs: number,
    idleTtlMs: number,
    limit?: LimitCounter,
  ): Promise<MintResult> {
    const { keys, args } = limitArgs(limit ? [limit] : []);
    const reply = await this.client.tetherMintToken(
      2 + keys.length,
      sessionKey,
      tokenKey,
      ...keys,
      sid,
      tokenTtlMs,
      idleTtlMs,
      ...args,
    );
    return reply < 0 ? { limitedMs: -reply } : reply === 1;
  }

  override async renewSessions(sessionKeys: string[], idleTtlMs: number): Promise<number[]> {
    if (sessionKeys.length === 0) return [];
    const gone = await this.client.tetherRenewSessions(sessionKeys.length, ...sessionKeys, idleTtlMs);
    return gone.map((index) => index - 1);
  }

  override async consumeToken(
    tokenKey: string,
    sessionKeyPrefix: string,
    limits: LimitCounter[] = [],
  ): Promise<ConsumedToken> {
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

  override async consumeTicket(
    nonceKey: string,
    ttlMs: number,
    sid: string,
    sessionKeyPrefix: string,
    limits: LimitCounter[] = [],
  ): Promise<ConsumedToken> {
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

  override async putHostSession(keys: HostSessionKeys, grant: HostSessionWrite): Promise<HostSessionPut> {
    const reply = await this.client.tetherHostGrant(
      3,
      keys.record,
      keys.session,
      keys.legacyEnded,
      ...hostGrantArgs(grant),
    );
    return reply[0] === "ok" ? { status: "ok", capAt: reply[1] } : { status: reply[0] };
  }

  override async endHostSession(keys: HostSessionKeys, end: { now: number; maxAgeMs: number }): Promise<void> {
    await this.client.tetherEndHostSession(3, keys.record, keys.session, keys.legacyEnded, end.now, end.maxAgeMs);
  }
}

/**
 * The Redis auth store. On one Redis each operation is one script, one round
 * trip, the limits of a token request and of a handshake counted inside it. On a
 * Redis Cluster a token, its session and each limit live in different slots:
 * the same steps run one slot at a time (`SteppedAuthStore`, which says why
 * every guarantee still holds).
 */
export class RedisAuthStore implements AuthStore {
  private readonly store: AuthStore;

  constructor(client: RedisClient) {
    this.store = client.isCluster ? new SteppedAuthStore(new RedisKeySteps(client)) : new OneScriptAuthStore(client);
  }

  getOrCreate(key: string, candidate: string): Promise<string> {
    return this.store.getOrCreate(key, candidate);
  }

  mintToken(
    sessionKey: string,
    tokenKey: string,
    sid: string,
    tokenTtlMs: number,
    idleTtlMs: number,
    limit?: LimitCounter,
  ): Promise<MintResult> {
    return this.store.mintToken(sessionKey, tokenKey, sid, tokenTtlMs, idleTtlMs, limit);
  }

  renewSessions(sessionKeys: string[], idleTtlMs: number): Promise<number[]> {
    return this.store.renewSessions(sessionKeys, idleTtlMs);
  }

  consumeToken(tokenKey: string, sessionKeyPrefix: string, limits?: LimitCounter[]): Promise<ConsumedToken> {
    return this.store.consumeToken(tokenKey, sessionKeyPrefix, limits);
  }

  consumeTicket(
    nonceKey: string,
    ttlMs: number,
    sid: string,
    sessionKeyPrefix: string,
    limits?: LimitCounter[],
  ): Promise<ConsumedToken> {
    return this.store.consumeTicket(nonceKey, ttlMs, sid, sessionKeyPrefix, limits);
  }

  putHostSession(keys: HostSessionKeys, grant: HostSessionWrite): Promise<HostSessionPut> {
    return this.store.putHostSession(keys, grant);
  }

  endHostSession(keys: HostSessionKeys, end: { now: number; maxAgeMs: number }): Promise<void> {
    return this.store.endHostSession(keys, end);
  }

  deleteToken(tokenKey: string): Promise<void> {
    return this.store.deleteToken(tokenKey);
  }

  chargeLimit(limit: LimitCounter): Promise<number> {
    return this.store.chargeLimit(limit);
  }

  peekLimit(key: string): Promise<LimitCount | undefined> {
    return this.store.peekLimit(key);
  }

  resetLimit(key: string): Promise<void> {
    return this.store.resetLimit(key);
  }
}
