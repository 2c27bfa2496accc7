import { SteppedAuthStore } from "./auth-steps.js";
import { META_KEY_PREFIX } from "./history-redis.js";
import { type HostGrantReply, hostGrantArgs, RedisKeySteps } from "./redis-auth-steps.js";
import type { RedisClient } from "./redis-connection.js";
import {
  ADMIT_SESSION,
  CONSUME_TICKET,
  CONSUME_TOKEN,
  END_HOST_SESSION,
  HOST_GRANT,
  MINT_TOKEN,
  RENEW_SESSIONS,
} from "./scripts.js";
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

type ScriptArgs = [keyCount: number, ...keysThenArgs: (string | number)[]];

/**
 * The arguments of a script that counts limits with its work: its own keys, then
 * the limits' keys; its own ARGV, then each limit's points and window.
 */
function withLimits(keys: string[], args: (string | number)[], limits: LimitCounter[]): ScriptArgs {
  // Pushed, not spread: one array per handshake instead of five and their iterators.
  const out: ScriptArgs = [keys.length + limits.length];
  for (const key of keys) out.push(key);
  for (const limit of limits) out.push(limit.key);
  for (const arg of args) out.push(arg);
  for (const limit of limits) out.push(limit.points, limit.windowSeconds);
  return out;
}

/** Scripts over several keys, each taking its key count (the limits counted with some are optional keys). */
interface MultiKeyScripts {
  tetherMintToken(...args: ScriptArgs): Promise<number>;
  tetherConsumeToken(...args: ScriptArgs): Promise<ConsumeReply>;
  tetherConsumeTicket(...args: ScriptArgs): Promise<ConsumeReply>;
  tetherAdmitSession(...args: ScriptArgs): Promise<ConsumeReply>;
  tetherRenewSessions(...args: ScriptArgs): Promise<number[]>;
  tetherHostGrant(...args: ScriptArgs): Promise<HostGrantReply>;
  tetherEndHostSession(...args: ScriptArgs): Promise<number>;
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
    client.defineCommand("tetherAdmitSession", { lua: ADMIT_SESSION });
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
    const reply = await this.client.tetherMintToken(
      ...withLimits([sessionKey, tokenKey], [sid, tokenTtlMs, idleTtlMs], limit ? [limit] : []),
    );
    return reply < 0 ? { limitedMs: -reply } : reply === 1;
  }

  override async renewSessions(
    sessionKeys: string[],
    idleTtlMs: number,
    renewing = sessionKeys.length,
  ): Promise<number[]> {
    if (sessionKeys.length === 0) return [];
    const gone = await this.client.tetherRenewSessions(sessionKeys.length, ...sessionKeys, idleTtlMs, renewing);
    return gone.map((index) => index - 1);
  }

  override async consumeToken(
    tokenKey: string,
    sessionKeyPrefix: string,
    limits: LimitCounter[] = [],
  ): Promise<ConsumedToken> {
    return consumed(
      await this.client.tetherConsumeToken(...withLimits([tokenKey], [sessionKeyPrefix, USER_META_PREFIX], limits)),
    );
  }

  override async consumeTicket(
    nonceKey: string,
    ttlMs: number,
    sid: string,
    sessionKeyPrefix: string,
    limits: LimitCounter[] = [],
  ): Promise<ConsumedToken> {
    const ownArgs = [ttlMs, sid, sessionKeyPrefix, USER_META_PREFIX];
    return consumed(await this.client.tetherConsumeTicket(...withLimits([nonceKey], ownArgs, limits)));
  }

  override async admitSession(
    sid: string,
    sessionKeyPrefix: string,
    idleTtlMs: number,
    limits: LimitCounter[] = [],
  ): Promise<ConsumedToken> {
    const ownArgs = [idleTtlMs, sid, USER_META_PREFIX];
    return consumed(await this.client.tetherAdmitSession(...withLimits([sessionKeyPrefix + sid], ownArgs, limits)));
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
  /** On a Cluster a session's existence is one EXISTS of its own; on one Redis, one per batch. */
  readonly checksEachSession: boolean;

  constructor(client: RedisClient) {
    this.store = client.isCluster ? new SteppedAuthStore(new RedisKeySteps(client)) : new OneScriptAuthStore(client);
    this.checksEachSession = client.isCluster;
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

  renewSessions(sessionKeys: string[], idleTtlMs: number, renewing?: number): Promise<number[]> {
    return this.store.renewSessions(sessionKeys, idleTtlMs, renewing);
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

  admitSession(
    sid: string,
    sessionKeyPrefix: string,
    idleTtlMs: number,
    limits?: LimitCounter[],
  ): Promise<ConsumedToken> {
    return this.store.admitSession(sid, sessionKeyPrefix, idleTtlMs, limits);
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
