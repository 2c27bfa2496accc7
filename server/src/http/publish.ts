import { ErrorCode, PublishBody, Route } from "@tether/shared";
import express, { type RequestHandler, Router } from "express";
import { safeEqual } from "../auth/secrets.js";
import { TetherError } from "../errors.js";
import { assertPublishableData, type Publisher } from "../realtime/publisher.js";

function bearer(publishKey: string): RequestHandler {
  return (req, _res, next) => {
    const header = req.headers.authorization ?? "";
    const given = header.startsWith("Bearer ") ? header.slice("Bearer ".length) : "";
    next(given !== "" && safeEqual(given, publishKey) ? undefined : new TetherError(ErrorCode.InvalidCredentials));
  };
}

/** `POST /api/publish` for other backends, behind the publish key (off when no key is set). */
export function publishRoutes(
  publishKey: string | undefined,
  publisher: () => Publisher,
  maxBodyBytes: number,
): Router {
  const router = Router();
  if (publishKey === undefined) return router;
  router.post(Route.Publish, bearer(publishKey), express.json({ limit: maxBodyBytes }), async (req, res) => {
    // Before the schema, which must not be the first to walk a body nested thousands deep.
    assertPublishableData((req.body as { data?: unknown } | undefined)?.data);
    const body = PublishBody.safeParse(req.body);
    if (!body.success) {
      throw new TetherError(
        ErrorCode.InvalidInput,
        'Expected {"target": {"user"} or {"room"}, "event": a non-reserved name, "data": an object}.',
      );
    }
    const offset = await publisher().publish(body.data.target, body.data.event, body.data.data);
    res.status(202).json({ offset });
  });
  return router;
}
