import type { IncomingMessage } from "node:http";
import { ErrorCode, type WsTokenResponse } from "@tether/shared";
import type { Request, RequestHandler } from "express";
import type { Logger } from "pino";
import type { HostSessionGrant } from "../auth/service.js";
import { TetherError } from "../errors.js";
import { sendError, sendJson } from "./errors.js";

/**
 * What a host's token route grants a request (see `tether.tokenRouteFor`): the host session
 * it belongs to, or null/undefined to refuse it (401 SESSION_REQUIRED). May be async.
 */
export type GrantFor = (
  req: Request,
) => HostSessionGrant | null | undefined | Promise<HostSessionGrant | null | undefined>;

/** Mints a token for a host session: `tether.issueTokenFor`, the one place that does. */
type IssueTokenFor = (req: IncomingMessage, grant: HostSessionGrant) => Promise<WsTokenResponse>;

/**
 * The host's token route as an express handler: asks `grant` who the request is, mints with
 * `issueTokenFor`, and answers the token (`Cache-Control: no-store`) or a typed error body,
 * as Tether's own routes do (never a stack trace; INTERNAL when `grant` throws).
 */
export function hostTokenRoute(issueTokenFor: IssueTokenFor, logger: Logger, grant: GrantFor): RequestHandler {
  if (typeof grant !== "function") throw new TypeError("tokenRouteFor: grant must be a function of the request");
  return (req, res) => {
    const minted = (async () => {
      const granted = await grant(req);
      if (granted === null || granted === undefined)
        throw new TetherError(ErrorCode.SessionRequired, "No signed-in session for a token.");
      return issueTokenFor(req, granted);
    })();
    minted.then(
      (body) => sendJson(res, 200, body satisfies WsTokenResponse, { "Cache-Control": "no-store" }),
      (err: unknown) => sendError(res, err, req.originalUrl.split("?")[0] ?? req.path, logger),
    );
  };
}
