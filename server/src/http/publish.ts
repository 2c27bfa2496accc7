import { ErrorCode, PublishBody, Route } from "@tether/shared";
import express, { Router } from "express";
import { TetherError } from "../errors.js";
import { assertPublishableData, assertPublishId, type BroadcastTarget, type Publisher } from "../realtime/publisher.js";
import { requireBearer } from "./bearer.js";

/**
 * The `Idempotency-Key` header (IETF httpapi draft): a structured-field string
 * (`"…"`) or, leniently, the bare token; undefined when absent.
 */
function idempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const value = (Array.isArray(header) ? header.join(",") : header).trim();
  const key = /^"(.*)"$/.exec(value)?.[1] ?? value;
  assertPublishId(key);
  return key;
}

/**
 * `POST /api/publish` for other backends, behind the publish key (off when no key is set).
 * `"ephemeral": true` sends an ephemeral event to a user, a room or everyone (202 `{}`: no offset;
 * see `PublishOptions.ephemeral`).
 * With an `Idempotency-Key` header, a retried request publishes once and answers the first
 * offset (202 again); the same key with another body is refused with 422.
 */
export function publishRoutes(
  publishKey: string | undefined,
  publisher: () => Publisher,
  maxBodyBytes: number,
): Router {
  const router = Router();
  if (publishKey === undefined) return router;
  router.post(Route.Publish, requireBearer(publishKey), express.json({ limit: maxBodyBytes }), async (req, res) => {
    // Before the schema, which must not be the first to walk a body nested thousands deep.
    assertPublishableData((req.body as { data?: unknown } | undefined)?.data);
    const body = PublishBody.safeParse(req.body);
    if (!body.success) {
      throw new TetherError(
        ErrorCode.InvalidInput,
        'Expected {"target": {"user"} or {"room"}, "event": a non-reserved name, "data": an object, "ephemeral"?: true}.',
      );
    }
    const { target, event, data, ephemeral } = body.data;
    if (ephemeral === true) {
      // Sent at once, nothing to retry or dedupe: no offset, and an Idempotency-Key has nothing to key.
      await publisher().publish(target as BroadcastTarget, event, data, { ephemeral: true });
      res.status(202).json({});
      return;
    }
    if ("everyone" in target || "except" in target)
      throw new TetherError(ErrorCode.InvalidInput, "{everyone} and {room, except} are for ephemeral events.");
    const id = idempotencyKey(req.headers["idempotency-key"]);
    // A client that hung up stops the retries: it will retry itself (under its key, still once).
    const gone = new AbortController();
    res.once("close", () => gone.abort());
    const offset = await publisher().publish(target, event, data, {
      ...(id === undefined ? {} : { id }),
      signal: gone.signal,
    });
    res.status(202).json({ offset });
  });
  return router;
}
