import { ErrorCode } from "@tether/shared";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { TetherError } from "../errors.js";
import type { RedisClient } from "../store/redis-connection.js";
import type { LimitCounter } from "../store/types.js";
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

/** rate-limiter-flexible's keys are `<keyPrefix>:<key>`. */
const keyPrefixOf = (name: LimitName) => `tether:rl:${name}`;

/** RATE_LIMITED, with Retry-After from the ms until the limit's window ends. */
export function rateLimited(msBeforeNext: number): TetherError {
  const error = new TetherError(ErrorCode.RateLimited);
  error.retryAfterSeconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return error;
}

const windowSecondsOf = (spec: LimitSpec) => Math.max(1, Math.ceil(spec.durationMs / 1000));

/**
 * Rate limits shared by every instance through Redis (rate-limiter-flexible);
 * embedded mode keeps them in process. Every check runs under the request's
 * deadline, and a check Redis cannot answer fails the request (UNAVAILABLE):
 * the work behind it needs Redis anyway, so there is nothing to fall back to.
 */
export class RateLimits {
  private readonly limiters: Map<LimitName, RateLimiterMemory | RateLimiterRedis>;
  /** In-process twins of some limits, for `screen`. */
  private readonly screens = new Map<LimitName, RateLimiterMemory>();
  private readonly specs: LimitSpecs;
  /** The limits live in Redis: a store script may count them with its own work (`counter`). */
  readonly shared: boolean;

  constructor(specs: LimitSpecs, redis: RedisClient | undefined, enabled: boolean) {
    this.specs = specs;
    this.limiters = new Map();
    this.shared = enabled && redis !== undefined;
    if (!enabled) return;
    for (const [name, spec] of Object.entries(specs) as [LimitName, LimitSpec][]) {
      const options = {
        keyPrefix: keyPrefixOf(name),
        points: spec.points,
        duration: windowSecondsOf(spec),
      };
      this.limiters.set(
        name,
        redis
          ? new RateLimiterRedis({ ...options, storeClient: redis, rejectIfRedisNotReady: true })
          : new RateLimiterMemory(options),
      );
    }
  }

  /**
   * Counts one action for the key; throws RATE_LIMITED (with Retry-After) past
   * the limit. The key is computed only when the limit is on (hashing a session
   * id or resolving a client IP is work the hot path skips otherwise).
   */
  async consume(name: LimitName, key: () => string, deadline: Deadline): Promise<void> {
    const limiter = this.limiters.get(name);
    if (!limiter) return;
    try {
      await deadline.run(limiter.consume(key()));
    } catch (res) {
      if (res instanceof RateLimiterRes) throw rateLimited(res.msBeforeNext);
      throw res;
    }
  }

  /**
   * What a store script needs to count one action under this limit exactly as
   * `consume` would (same key, points and window); undefined when the limit is
   * off or the limits are not in Redis (then `consume` it).
   */
  counter(name: LimitName, key: () => string): LimitCounter | undefined {
    if (!this.shared || !this.limiters.has(name)) return undefined;
    const spec = this.specs[name];
    return { key: `${keyPrefixOf(name)}:${key()}`, points: spec.points, windowSeconds: windowSecondsOf(spec) };
  }

  /**
   * Counts one action against this instance's own copy of the limit, in process,
   * and throws RATE_LIMITED past it: a free first gate that refuses a flood from
   * one key before it spends anything shared (the instance's admission budget, a
   * Redis round trip). The fleet-wide count (`consume`, `counter`) still applies after.
   */
  screen(name: LimitName, key: () => string): void | Promise<void> {
    if (!this.limiters.has(name)) return;
    let screen = this.screens.get(name);
    if (!screen) {
      const spec = this.specs[name];
      screen = new RateLimiterMemory({
        keyPrefix: `screen:${name}`,
        points: spec.points,
        duration: windowSecondsOf(spec),
      });
      this.screens.set(name, screen);
    }
    return screen.consume(key()).then(
      () => undefined,
      (res: unknown) => {
        throw res instanceof RateLimiterRes ? rateLimited(res.msBeforeNext) : res;
      },
    );
  }

  /** Throws RATE_LIMITED when the key has used up its budget; counts nothing. */
  async check(name: LimitName, key: () => string, deadline: Deadline): Promise<void> {
    const limiter = this.limiters.get(name);
    if (!limiter) return;
    const res = await deadline.run(limiter.get(key()));
    if (res !== null && res.consumedPoints >= this.specs[name].points) throw rateLimited(res.msBeforeNext);
  }

  /** Counts one action (a failure) without refusing anything. */
  async charge(name: LimitName, key: () => string, deadline: Deadline): Promise<void> {
    const limiter = this.limiters.get(name);
    if (limiter) await deadline.run(limiter.penalty(key()));
  }

  /** Forgets the key's count (a successful login clears its account's failures). */
  async reset(name: LimitName, key: () => string, deadline: Deadline): Promise<void> {
    const limiter = this.limiters.get(name);
    if (limiter) await deadline.run(limiter.delete(key()));
  }
}
