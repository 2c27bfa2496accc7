import { ErrorCode, LoginBody } from "@tether/shared";
import { TetherError } from "../errors.js";
import { safeEqual } from "./secrets.js";
import type { LoginCheck } from "./service.js";

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
