import type { ServerResponse } from "node:http";
import { ErrorCode } from "@tether/shared";
import type { ErrorRequestHandler, RequestHandler } from "express";
import type { Logger } from "pino";
import { TetherError, toTetherError } from "../errors.js";
import { serializeError } from "../observability/logger.js";

/** body-parser's error types, mapped to the contract's codes. */
const BODY_ERRORS: Readonly<Record<string, TetherError>> = {
  "entity.parse.failed": new TetherError(ErrorCode.InvalidInput, "The body is not valid JSON."),
  "entity.too.large": new TetherError(ErrorCode.PayloadTooLarge),
  "entity.verify.failed": new TetherError(ErrorCode.InvalidInput),
  "request.aborted": new TetherError(ErrorCode.InvalidInput, "The request was aborted."),
  "request.size.invalid": new TetherError(ErrorCode.InvalidInput),
  "encoding.unsupported": new TetherError(ErrorCode.InvalidInput, "Unsupported content encoding."),
  "charset.unsupported": new TetherError(ErrorCode.InvalidInput, "Unsupported charset."),
  "parameters.too.many": new TetherError(ErrorCode.InvalidInput),
  "stream.encoding.set": new TetherError(ErrorCode.Internal),
};

function bodyError(err: unknown): TetherError | undefined {
  const type = typeof err === "object" && err !== null ? (err as { type?: unknown }).type : undefined;
  return typeof type === "string" ? BODY_ERRORS[type] : undefined;
}

/** Writes a JSON response with plain Node calls (express's helpers are not needed on the hot path). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": String(Buffer.byteLength(text)),
    "X-Content-Type-Options": "nosniff",
  });
  res.end(text);
}

/**
 * Logs and sends any error as `{"error":{"code","message"}}`; never a stack
 * trace. The one way errors leave Tether's routes, express or not.
 */
export function sendError(res: ServerResponse, err: unknown, route: string, logger: Logger): void {
  const error = bodyError(err) ?? toTetherError(err);
  // Serialized here too, not only by Tether's logger: a host app may pass its own.
  if (error.code === ErrorCode.Internal) logger.error({ err: serializeError(err), route }, "request failed");
  else if (error.code === ErrorCode.Unavailable) logger.warn({ err: serializeError(err), route }, "store unavailable");
  // A late error (a store callback after the response went out) has nothing left to say.
  if (res.headersSent) return;
  const headers: Record<string, string> = {};
  if (error.retryAfterSeconds !== undefined) headers["Retry-After"] = String(error.retryAfterSeconds);
  sendJson(res, error.status, error.toBody(), headers);
}

/** The express error handler of Tether's routes. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => sendError(res, err, req.originalUrl.split("?")[0] ?? req.path, logger);
}

/** Unknown routes: 404 with a JSON body. */
export const notFound: RequestHandler = (_req, res) => {
  const error = new TetherError(ErrorCode.NotFound);
  res.status(error.status).json(error.toBody());
};
