import type { IncomingMessage } from "node:http";
import { ErrorCode, LoginBody } from "@tether/shared";
import type { Request } from "express";
import { TetherError } from "../errors.js";
import type { RequestDeadlines } from "./deadline.js";
import { tagOf } from "./keys.js";
import type { RateLimits } from "./limits.js";
import { safeEqual } from "./secrets.js";

/**
 * What a login check decided. `account` names the account the attempt was for
 * (e.g. the normalised user name, the same on success and refusal): failed logins
 * are then throttled per account as well as per client address. Without it (the
 * built-in API-key login has a single account) the address is the only key.
 */
export type LoginResult = { userId: string; account?: string } | { refused: true; account?: string };

/**
 * Decides who is logging in: a user id (or `{ userId, account? }`), or null (or
 * `{ refused: true, account? }`) to refuse.
 */
export type LoginCheck = (req: Request) => Promise<string | null | LoginResult> | string | null | LoginResult;

function normaliseLogin(result: string | null | LoginResult): LoginResult {
  if (typeof result === "string") return result === "" ? { refused: true } : { userId: result };
  if (result === null) return { refused: true };
  if ("userId" in result && (typeof result.userId !== "string" || result.userId === "")) return { refused: true };
  return result;
}

/** The user id the built-in API-key login signs every holder of the key in as. */
export const API_KEY_USER = "admin";

/**
 * The built-in login check: `{"apiKey"}` compared in constant time. Pass a
 * function to read the key at each login (a generated key can be replaced by
 * the one every instance converged on).
 */
export function apiKeyLogin(apiKey: string | (() => string)): LoginCheck {
  const current = typeof apiKey === "string" ? () => apiKey : apiKey;
  return (req) => {
    const body = LoginBody.safeParse(req.body);
    if (!body.success) throw new TetherError(ErrorCode.InvalidInput, 'Expected a JSON body {"apiKey": string}.');
    return safeEqual(body.data.apiKey, current()) ? API_KEY_USER : null;
  };
}

/**
 * The throttled login flow any login check runs in: the limits before the check
 * (per client address, and the fleet-wide breaker) and after it (per account).
 */
export class LoginThrottle {
  constructor(
    private readonly limits: RateLimits,
    private readonly clientIp: (req: IncomingMessage) => string,
    private readonly deadlines: RequestDeadlines,
  ) {}

  /**
   * Admits a login attempt before the login check runs: RATE_LIMITED when the
   * fleet-wide breaker is open (counts nothing) or the client address has used its
   * budget (counts the attempt there only). Attempts refused here charge no other limit.
   */
  async admit(req: Request): Promise<void> {
    const deadline = this.deadlines.of(req);
    await this.limits.check("loginGlobal", () => "all", deadline);
    await this.limits.consume("login", () => this.clientIp(req), deadline);
  }

  /**
   * Runs the login check on an admitted attempt and returns the user id, or throws
   * INVALID_CREDENTIALS, or RATE_LIMITED when the named account has too many recent
   * failures (then even the right password is refused, so a guess learns nothing, and
   * no other limit is charged). A failure counts against the account and the breaker.
   */
  async verify(req: Request, check: LoginCheck): Promise<string> {
    const result = normaliseLogin(await check(req));
    // The host's check (password hashing, its own user store) is not Redis time: the store
    // work after it gets a budget of its own.
    const deadline = this.deadlines.restart(req);
    const { account } = result;
    const accountKey = () => tagOf(account ?? "");
    if (account !== undefined) await this.limits.check("loginAccount", accountKey, deadline);
    if ("userId" in result) {
      if (account !== undefined) await this.limits.reset("loginAccount", accountKey, deadline);
      return result.userId;
    }
    if (account !== undefined) await this.limits.charge("loginAccount", accountKey, deadline);
    await this.limits.charge("loginGlobal", () => "all", deadline);
    throw new TetherError(ErrorCode.InvalidCredentials);
  }
}
