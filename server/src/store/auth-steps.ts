import { hostSessionJson } from "./scripts.js";
import type {
  AuthStore,
  ConsumedToken,
  HostSessionKeys,
  HostSessionPut,
  HostSessionWrite,
  LimitCount,
  LimitCounter,
  LimitStore,
  MintResult,
} from "./types.js";

/** What a host session's record answered a grant: the cap and the session's TTL, or a refusal. */
export type HostRecordGrant =
  | { status: "ok"; capAt: number; ttlMs: number }
  | { status: "ended" | "expired" | "other-user" };

/**
 * The steps the auth operations are made of, each on one key and atomic on its
 * own: what a Redis Cluster runs within one slot (a script or a command), and
 * what the in-process store runs within one turn of the event loop.
 */
export interface KeySteps extends LimitStore {
  getOrCreate(key: string, candidate: string): Promise<string>;
  get(key: string): Promise<string | null>;
  /** Deletes the key; resolves to what it held. */
  getdel(key: string): Promise<string | null>;
  /** SET with a TTL. */
  put(key: string, value: string, ttlMs: number): Promise<void>;
  /** SET NX with a TTL: false when the key existed (and nothing changed). */
  claim(key: string, ttlMs: number): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  del(key: string): Promise<void>;
  /** Renews a session's idle TTL, never past its cap (deleted once past it); false when it is gone. */
  renew(sessionKey: string, idleTtlMs: number): Promise<boolean>;
  /**
   * A grant checked against and recorded in a host session's record alone (the
   * script HOST_GRANT without the session's keys): the caller writes the session.
   */
  grantHostRecord(recordKey: string, grant: HostSessionWrite, legacyEnded: boolean): Promise<HostRecordGrant>;
  /** Marks a host session's record ended (END_HOST_SESSION on the record alone); resolves to the ms it is kept. */
  endHostRecord(recordKey: string, now: number, maxAgeMs: number): Promise<number>;
  /** Whether a host session's record is marked ended. */
  hostRecordEnded(recordKey: string): Promise<boolean>;
}

/**
 * The auth operations as one-key steps, for a store that cannot run one atomic
 * step over all of an operation's keys: a Redis Cluster (a token, its session and
 * each limit are in different slots) and the in-process store. Every guarantee of
 * the one-script Redis store still holds:
 * - a token is spent by one GETDEL and a ticket by one SET NX, so exactly one
 *   consume gets its session (single use, no double spend under races);
 * - every limit is counted by its own atomic step, once per call, whatever the
 *   credential and the other limits find, and refuses with the same ms;
 * - a session deleted between the credential's step and the session's read is
 *   read as gone, and a token is minted only after its session was found and renewed;
 * - a host session's owner, cap and end are decided in its record's own step; an
 *   end marks the record before it deletes the session, so a grant that wrote the
 *   session after an end's mark sees the mark when it looks again, and undoes its write.
 */
export class SteppedAuthStore implements AuthStore {
  constructor(private readonly steps: KeySteps) {}

  getOrCreate(key: string, candidate: string): Promise<string> {
    return this.steps.getOrCreate(key, candidate);
  }

  chargeLimit(limit: LimitCounter): Promise<number> {
    return this.steps.chargeLimit(limit);
  }

  peekLimit(key: string): Promise<LimitCount | undefined> {
    return this.steps.peekLimit(key);
  }

  resetLimit(key: string): Promise<void> {
    return this.steps.resetLimit(key);
  }

  deleteToken(tokenKey: string): Promise<void> {
    return this.steps.del(tokenKey);
  }

  async mintToken(
    sessionKey: string,
    tokenKey: string,
    sid: string,
    tokenTtlMs: number,
    idleTtlMs: number,
    limit?: LimitCounter,
  ): Promise<MintResult> {
    const limitedMs = limit ? await this.steps.chargeLimit(limit) : 0;
    if (limitedMs > 0) return { limitedMs };
    if (!(await this.steps.renew(sessionKey, idleTtlMs))) return false;
    await this.steps.put(tokenKey, sid, tokenTtlMs);
    return true;
  }

  /**
   * One step per session: a renewal, or an EXISTS of its own (on a Cluster the keys are in
   * different slots, and EXISTS over several is CROSSSLOT; a script looping over one node's keys
   * would still run, and count, one EXISTS per key). So callers check each session seldom:
   * once per `TETHER_SESSION_SWEEP_INTERVAL` (`AuthStore.checksEachSession`).
   */
  async renewSessions(sessionKeys: string[], idleTtlMs: number, renewing = sessionKeys.length): Promise<number[]> {
    const alive = await Promise.all(
      sessionKeys.map((key, index) => (index < renewing ? this.steps.renew(key, idleTtlMs) : this.steps.exists(key))),
    );
    return alive.flatMap((ok, index) => (ok ? [] : [index]));
  }

  async consumeToken(tokenKey: string, sessionKeyPrefix: string, limits: LimitCounter[] = []): Promise<ConsumedToken> {
    const [limitedMs, sid] = await Promise.all([this.chargeAll(limits), this.steps.getdel(tokenKey)]);
    return this.sessionOf(limitedMs, sid, sessionKeyPrefix);
  }

  async consumeTicket(
    nonceKey: string,
    ttlMs: number,
    sid: string,
    sessionKeyPrefix: string,
    limits: LimitCounter[] = [],
  ): Promise<ConsumedToken> {
    const [limitedMs, fresh] = await Promise.all([this.chargeAll(limits), this.steps.claim(nonceKey, ttlMs)]);
    return this.sessionOf(limitedMs, fresh ? sid : null, sessionKeyPrefix);
  }

  async admitSession(
    sid: string,
    sessionKeyPrefix: string,
    idleTtlMs: number,
    limits: LimitCounter[] = [],
  ): Promise<ConsumedToken> {
    const limitedMs = await this.chargeAll(limits);
    if (limitedMs > 0) return { status: "limited", msBeforeNext: limitedMs };
    // A session past its cap is deleted by the renewal: the read below finds it gone.
    await this.steps.renew(sessionKeyPrefix + sid, idleTtlMs);
    return this.sessionOf(0, sid, sessionKeyPrefix);
  }

  async putHostSession(keys: HostSessionKeys, grant: HostSessionWrite): Promise<HostSessionPut> {
    const legacyEnded = await this.steps.exists(keys.legacyEnded);
    const granted = await this.steps.grantHostRecord(keys.record, grant, legacyEnded);
    if (granted.status !== "ok") return granted;
    await this.steps.put(keys.session, hostSessionJson(grant.userId, granted.capAt, grant.now), granted.ttlMs);
    if ((await this.steps.hostRecordEnded(keys.record)) || (await this.steps.exists(keys.legacyEnded))) {
      await this.steps.del(keys.session);
      return { status: "ended" };
    }
    return { status: "ok", capAt: granted.capAt };
  }

  async endHostSession(keys: HostSessionKeys, end: { now: number; maxAgeMs: number }): Promise<void> {
    // The record first (see putHostSession), then what instances of earlier releases read.
    const keptMs = await this.steps.endHostRecord(keys.record, end.now, end.maxAgeMs);
    await this.steps.put(keys.legacyEnded, "1", keptMs);
    await this.steps.del(keys.session);
  }

  /** Counts every limit, as one script would; the ms of the first one past its points, else 0. */
  private async chargeAll(limits: LimitCounter[]): Promise<number> {
    const limitedMs = await Promise.all(limits.map((limit) => this.steps.chargeLimit(limit)));
    return limitedMs.find((ms) => ms > 0) ?? 0;
  }

  /** What a consume found, once its credential was spent (`sid` null: it was not there to spend). */
  private async sessionOf(limitedMs: number, sid: string | null, sessionKeyPrefix: string): Promise<ConsumedToken> {
    if (limitedMs > 0) return { status: "limited", msBeforeNext: limitedMs };
    if (sid === null) return { status: "unknown" };
    const session = await this.steps.get(sessionKeyPrefix + sid);
    return session === null ? { status: "session-gone", sid } : { status: "ok", sid, session };
  }
}
