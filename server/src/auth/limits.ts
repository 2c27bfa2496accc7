import { ErrorCode } from "@tether/shared";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { TetherError } from "../errors.js";
import type { RedisClient } from "../store/redis-connection.js";

/** `points` actions per `durationMs`, per key. */
export interface LimitSpec {
  points: number;
  durationMs: number;
}

/** Every rate limit Tether applies, and what it is keyed by. */
export interface LimitSpecs {
  /** Logins per client IP (brute force). */
  login: LimitSpec;
  /** Logins from everywhere together (distributed brute force). */
  loginGlobal: LimitSpec;
  /** WS tokens minted per session. */
  token: LimitSpec;
  /** Handshakes per session. */
  handshakeSession: LimitSpec;
  /** Handshakes per client IP (before the token is even looked up). */
  handshakeIp: LimitSpec;
}

export type LimitName = keyof LimitSpecs;

/**
 * Rate limits shared by every instance through Redis (rate-limiter-flexible),
 * with an in-process limiter as insurance while Redis is unreachable, so a
 * limit check never hangs a request. Embedded mode uses the in-process one.
 */
export class RateLimits {
  private readonly limiters: Map<LimitName, RateLimiterMemory | RateLimiterRedis>;

  constructor(specs: LimitSpecs, redis: RedisClient | undefined, enabled: boolean) {
    this.limiters = new Map();
    if (!enabled) return;
    for (const [name, spec] of Object.entries(specs) as [LimitName, LimitSpec][]) {
      const options = {
        keyPrefix: `tether:rl:${name}`,
        points: spec.points,
        duration: Math.max(1, Math.ceil(spec.durationMs / 1000)),
      };
      const memory = new RateLimiterMemory(options);
      this.limiters.set(
        name,
        redis
          ? new RateLimiterRedis({
              ...options,
              storeClient: redis,
              rejectIfRedisNotReady: true,
              insuranceLimiter: memory,
            })
          : memory,
      );
    }
  }

  /**
   * Counts one action for the key; throws RATE_LIMITED (with Retry-After) past
   * the limit. The key is computed only when the limit is on (hashing a session
   * id or resolving a client IP is work the hot path skips otherwise).
   */
  async consume(name: LimitName, key: () => string): Promise<void> {
    const limiter = this.limiters.get(name);
    if (!limiter) return;
    try {
      await limiter.consume(key());
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      const error = new TetherError(ErrorCode.RateLimited);
      error.retryAfterSeconds = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
      throw error;
    }
  }
}
