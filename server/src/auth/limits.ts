import { ErrorCode } from "@tether/shared";
import { TetherError } from "../errors.js";
import type { LimitCounter, LimitStore } from "../store/types.js";
import { WindowCounters } from "../store/window-counters.js";
import type { Deadline } from "./deadline.js";

/** `points` actions per `durationMs`, per key. */
export interface LimitSpec {
  points: number;
  durationMs: number;
}

/** Every rate limit Tether applies, and what it is keyed by. */
export interface LimitSpecs {
  /** Login attempts per client address (brute force from one place). */
  login: LimitSpec;
  /** Failed logins per account, when the login check names one (distributed guessing of one account). */
  loginAccount: LimitSpec;
  /**
   * Failed logins fleet-wide: a breaker that protects the login check's backend from a
   * distributed flood. Only attempts every other limit admitted count, so one address adds
   * at most its own `login` budget (config makes sure that is well under this one).
   */
  loginGlobal: LimitSpec;
  /** WS tokens minted per session. */
  token: LimitSpec;
  /** Handshakes per session. */
  handshakeSession: LimitSpec;
  /** Handshakes per client IP (before the token is even looked up). */
  handshakeIp: LimitSpec;
}

export type LimitName = keyof LimitSpecs;

/** The counters' keys are `tether:rl:<limit>:<key>`, as rate-limiter-flexible lays them out (see `LimitStore`). */
const keyPrefixOf = (name: LimitName) => `tether:rl:${name}`;

/** RATE_LIMITED, with Retry-After from the ms until the limit's window ends. */
export function rateLimited(msBeforeNext: number): TetherError {
  const error = new TetherError(ErrorCode.RateLimited);
  error.retryAfterMs = Math.max(1, msBeforeNext);
  return error;
}

const windowSecondsOf = (spec: LimitSpec) => Math.max(1, Math.ceil(spec.durationMs / 1000));

/**
 * Tether's rate limits, each a fixed window counted in the store: in Redis,
 * shared by every instance (embedded mode: in process). One counter for all of
 * them: the token and handshake limits go into the store's mint and consume steps
 * (`counter`), which count them with their own work; the rest are counted here.
 * Every count runs under the request's deadline, and one the store cannot answer
 * fails the request (UNAVAILABLE): the work behind it needs the store anyway, so
 * there is nothing to fall back to.
 */
export class RateLimits {
  /** This instance's own copies of some limits, for `screen`. */
  private readonly screens = new WindowCounters();

  /** @param enabled false: every limit is off (`TETHER_RATE_LIMITS=off`). */
  constructor(
    private readonly specs: LimitSpecs,
    private readonly store: LimitStore,
    private readonly enabled: boolean,
  ) {}

  /**
   * What counting one action under this limit takes (the counter's key, points
   * and window), for a store step that counts it with its own work; undefined when
   * the limits are off. The key is computed only when the limit is on (hashing a
   * session id or resolving a client IP is work the hot path skips otherwise).
   */
  counter(name: LimitName, key: () => string): LimitCounter | undefined {
    if (!this.enabled) return undefined;
    const spec = this.specs[name];
    return { key: `${keyPrefixOf(name)}:${key()}`, points: spec.points, windowSeconds: windowSecondsOf(spec) };
  }

  /** Counts one action for the key; throws RATE_LIMITED (with Retry-After) past the limit. */
  async consume(name: LimitName, key: () => string, deadline: Deadline): Promise<void> {
    const counter = this.counter(name, key);
    if (!counter) return;
    const limitedMs = await deadline.run(this.store.chargeLimit(counter));
    if (limitedMs > 0) throw rateLimited(limitedMs);
  }

  /**
   * Counts one action against this instance's own copy of the limit, in process,
   * and throws RATE_LIMITED past it: a free first gate that refuses a flood from
   * one key before it spends anything shared (the instance's admission budget, a
   * store round trip). The fleet-wide count still applies after.
   */
  screen(name: LimitName, key: () => string): void {
    const counter = this.counter(name, key);
    if (!counter) return;
    const limitedMs = this.screens.charge(counter);
    if (limitedMs > 0) throw rateLimited(limitedMs);
  }

  /** Throws RATE_LIMITED when the key has used up its budget; counts nothing. */
  async check(name: LimitName, key: () => string, deadline: Deadline): Promise<void> {
    const counter = this.counter(name, key);
    if (!counter) return;
    const counted = await deadline.run(this.store.peekLimit(counter.key));
    if (counted !== undefined && counted.count >= counter.points) throw rateLimited(counted.msLeft);
  }

  /** Counts one action (a failure) without refusing anything. */
  async charge(name: LimitName, key: () => string, deadline: Deadline): Promise<void> {
    const counter = this.counter(name, key);
    if (counter) await deadline.run(this.store.chargeLimit(counter));
  }

  /** Forgets the key's count (a successful login clears its account's failures). */
  async reset(name: LimitName, key: () => string, deadline: Deadline): Promise<void> {
    const counter = this.counter(name, key);
    if (counter) await deadline.run(this.store.resetLimit(counter.key));
  }
}
