import type { IncomingMessage, ServerResponse } from "node:http";
import { ErrorCode, Route, type WsTokenResponse } from "@tether/shared";
import type { Logger } from "pino";
import type { OriginPolicy } from "../auth/origins.js";
import type { AuthService } from "../auth/service.js";
import { TetherError } from "../errors.js";
import type { Metrics } from "../observability/metrics.js";
import { sendError, sendJson } from "./errors.js";

/** A plain Node request handler. */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** Recognises the token request (the one route that runs on every reconnect) under a base path ("": the root). */
export function tokenRequestMatcher(basePath: string): (req: IncomingMessage) => boolean {
  const path = `${basePath}${Route.WsToken}`;
  return (req) => req.method === "POST" && (req.url === path || req.url?.startsWith(`${path}?`) === true);
}

/** Is this the token request, at the root? */
export const isTokenRequest = tokenRequestMatcher("");

/**
 * `POST /api/auth/ws-token`, written against plain Node so a standalone server
 * can answer it before express (it runs on every reconnect, and express's
 * routing would cost as much again); the express route calls the same handler.
 * No body, no session load: one store round trip.
 */
export function tokenHandler(deps: {
  auth: AuthService;
  origins: OriginPolicy;
  metrics: Metrics;
  logger: Logger;
}): NodeHandler {
  return (req, res) => {
    const cors = deps.origins.corsHeaders(req);
    if (!deps.origins.allows(req))
      return sendError(res, new TetherError(ErrorCode.OriginForbidden), Route.WsToken, deps.logger);
    deps.auth.issueToken(req).then(
      (minted) => {
        deps.metrics.tokens.inc({ result: "issued" });
        sendJson(res, 200, minted satisfies WsTokenResponse, { ...cors, "Cache-Control": "no-store" });
      },
      (err: unknown) => sendError(res, err, Route.WsToken, deps.logger),
    );
  };
}
