import { ErrorCode, LoginBody } from "@tether/shared";
import { TetherError } from "../errors.js";
import { safeEqual } from "./secrets.js";
import type { LoginCheck } from "./service.js";

/** The user id the built-in API-key login signs every holder of the key in as. */
export const API_KEY_USER = "admin";

/** The built-in login check: `{"apiKey"}` compared in constant time. */
export function apiKeyLogin(apiKey: string): LoginCheck {
  return (req) => {
    const body = LoginBody.safeParse(req.body);
    if (!body.success) throw new TetherError(ErrorCode.InvalidInput, 'Expected a JSON body {"apiKey": string}.');
    return safeEqual(body.data.apiKey, apiKey) ? API_KEY_USER : null;
  };
}
