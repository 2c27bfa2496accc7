import { ErrorCode } from "@tether/shared";
import type { RequestHandler } from "express";
import { safeEqual } from "../auth/secrets.js";
import { TetherError } from "../errors.js";

/**
 * Lets through requests with `Authorization: Bearer <key>` (compared in constant time);
 * the rest get 401 INVALID_CREDENTIALS, with `WWW-Authenticate` when a `realm` is named.
 */
export function requireBearer(key: string, realm?: string): RequestHandler {
  return (req, res, next) => {
    const header = req.headers.authorization ?? "";
    const given = header.startsWith("Bearer ") ? header.slice("Bearer ".length) : "";
    if (given !== "" && safeEqual(given, key)) return next();
    if (realm !== undefined) res.setHeader("WWW-Authenticate", `Bearer realm="${realm}"`);
    next(new TetherError(ErrorCode.InvalidCredentials));
  };
}
