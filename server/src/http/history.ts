import { ErrorCode, Route } from "@tether/shared";
import { Router } from "express";
import { TetherError } from "../errors.js";
import type { HistoryOptions, HistoryPage } from "../realtime/history.js";
import type { Target } from "../realtime/publisher.js";
import { requireBearer } from "./bearer.js";

/** Reads a target's history (see `Tether.history`). */
export type ReadHistory = (target: Target, options: HistoryOptions) => Promise<HistoryPage>;

/** One query parameter as text: INVALID_INPUT when repeated (an array) or an object. */
function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new TetherError(ErrorCode.InvalidInput, `\`${name}\` is given once, as text.`);
  return value;
}

/** `user:<id>` or `room:<name>`. */
function targetOf(text: string | undefined): Target {
  const match = text === undefined ? null : /^(user|room):(.+)$/s.exec(text);
  if (!match) throw new TetherError(ErrorCode.InvalidInput, "`target` is user:<id> or room:<name>.");
  return match[1] === "user" ? { user: match[2] as string } : { room: match[2] as string };
}

/**
 * `GET /api/history?target=user:<id>|room:<name>&limit=&before=` for other backends, behind
 * the publish key (off when no key is set): `{ events, offset, more }`, events oldest first.
 */
export function historyRoutes(publishKey: string | undefined, read: ReadHistory): Router {
  const router = Router();
  if (publishKey === undefined) return router;
  router.get(Route.History, requireBearer(publishKey), async (req, res) => {
    const target = targetOf(single(req.query.target, "target"));
    const limitText = single(req.query.limit, "limit");
    if (limitText !== undefined && !/^\d{1,7}$/.test(limitText))
      throw new TetherError(ErrorCode.InvalidInput, "`limit` is a positive integer.");
    const before = single(req.query.before, "before");
    const page = await read(target, {
      ...(limitText === undefined ? {} : { limit: Number(limitText) }),
      ...(before === undefined ? {} : { before }),
    });
    res.setHeader("Cache-Control", "no-store");
    res.json(page);
  });
  return router;
}
