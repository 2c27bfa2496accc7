import { ErrorCode } from "@tether/shared";
import { describe, expect, it } from "vitest";
import {
  classifyFailure,
  errorFromConnectError,
  errorFromFetchFailure,
  errorFromResponse,
  parseRetryAfter,
} from "../src/classify.js";
import { ClientErrorCode, TetherClientError } from "../src/errors.js";

const body = (code: string, message = "m") => ({ error: { code, message } });
const connectError = (data?: unknown) =>
  Object.assign(new Error(String((data as { code?: string })?.code ?? "x")), { data });

describe("classifyFailure: the session is gone → unauthenticated", () => {
  it("401 SESSION_REQUIRED from the token route", () => {
    const error = errorFromResponse(401, body(ErrorCode.SessionRequired), null);
    expect(error.code).toBe(ErrorCode.SessionRequired);
    expect(error.status).toBe(401);
    expect(error.retryable).toBe(false);
    expect(classifyFailure(error)).toEqual({ kind: "unauthenticated" });
  });

  it("401 SESSION_EXPIRED from the token route", () => {
    expect(classifyFailure(errorFromResponse(401, body(ErrorCode.SessionExpired), null))).toEqual({
      kind: "unauthenticated",
    });
  });

  it("a refused handshake with data.code SESSION_EXPIRED or SESSION_REQUIRED", () => {
    for (const code of [ErrorCode.SessionExpired, ErrorCode.SessionRequired]) {
      const error = errorFromConnectError(connectError({ code, retryable: false }));
      expect(error.code).toBe(code);
      expect(error.status).toBeUndefined();
      expect(classifyFailure(error)).toEqual({ kind: "unauthenticated" });
    }
  });
});

describe("classifyFailure: a forbidden origin → closed", () => {
  it("403 ORIGIN_FORBIDDEN from HTTP", () => {
    expect(classifyFailure(errorFromResponse(403, body(ErrorCode.OriginForbidden), null))).toEqual({ kind: "closed" });
  });

  it("a refused handshake with ORIGIN_FORBIDDEN", () => {
    const error = errorFromConnectError(connectError({ code: ErrorCode.OriginForbidden, retryable: false }));
    expect(classifyFailure(error)).toEqual({ kind: "closed" });
  });
});

describe("classifyFailure: everything else → retry", () => {
  const retries = (error: TetherClientError, hintMs?: number) =>
    expect(classifyFailure(error)).toEqual({ kind: "retry", hintMs });

  it("a handshake turned away by admission control waits its retryAfterMs hint (capped at a minute)", () => {
    const hinted = (retryAfterMs: unknown) =>
      errorFromConnectError(connectError({ code: ErrorCode.Unavailable, retryable: true, retryAfterMs }));
    retries(hinted(1_234), 1_234);
    retries(hinted(10 * 60_000), 60_000);
    retries(hinted("soon"));
    retries(hinted(-5));
  });

  it("network errors and timeouts", () => {
    const network = errorFromFetchFailure(new TypeError("fetch failed"), false, 10_000);
    expect(network.code).toBe(ClientErrorCode.Network);
    expect(network.retryable).toBe(true);
    retries(network);
    const timeout = errorFromFetchFailure(new DOMException("aborted", "AbortError"), true, 10_000);
    expect(timeout.code).toBe(ClientErrorCode.Timeout);
    retries(timeout);
  });

  it("any 5xx, with or without a JSON body", () => {
    const unavailable = errorFromResponse(503, body(ErrorCode.Unavailable), null);
    expect(unavailable.code).toBe(ErrorCode.Unavailable);
    expect(unavailable.retryable).toBe(true);
    retries(unavailable);
    retries(errorFromResponse(500, body(ErrorCode.Internal), null));
    const proxy = errorFromResponse(502, undefined, null);
    expect(proxy.code).toBe(ClientErrorCode.BadResponse);
    expect(proxy.retryable).toBe(true);
    retries(proxy);
  });

  it("429 RATE_LIMITED, with Retry-After as the minimum delay", () => {
    const error = errorFromResponse(429, body(ErrorCode.RateLimited), "7");
    expect(error.retryAfterMs).toBe(7000);
    retries(error, 7000);
    retries(errorFromResponse(429, undefined, "2"), 2000);
  });

  it("TOKEN_INVALID, RATE_LIMITED and UNAVAILABLE refusals of the handshake", () => {
    for (const code of [ErrorCode.TokenInvalid, ErrorCode.RateLimited, ErrorCode.Unavailable]) {
      const error = errorFromConnectError(connectError({ code, retryable: true }));
      expect(error.code).toBe(code);
      expect(error.retryable).toBe(true);
      retries(error);
    }
  });

  it("a connect_error without data (transport error, timeout)", () => {
    const transport = Object.assign(new Error("websocket error"), { type: "TransportError", description: 403 });
    const error = errorFromConnectError(transport);
    expect(error.code).toBe(ClientErrorCode.Transport);
    retries(error);
    retries(errorFromConnectError(new Error("timeout")));
    retries(errorFromConnectError(connectError({ code: "SOMETHING_NEW" })));
  });

  it("a lost connection", () => {
    retries(new TetherClientError({ code: ClientErrorCode.Disconnected, message: "transport close" }));
  });

  it("a 401 without a definitive code, or a session code with an odd status", () => {
    retries(errorFromResponse(401, "<html>", null));
    retries(errorFromResponse(503, body(ErrorCode.SessionRequired), null));
    retries(errorFromResponse(401, body(ErrorCode.TokenInvalid), null));
  });

  it("codes that are final for a request but prove nothing about the session", () => {
    retries(errorFromResponse(404, body(ErrorCode.NotFound), null));
    retries(errorFromResponse(400, body(ErrorCode.InvalidInput), null));
  });
});

describe("errorFromResponse", () => {
  it("keeps the server's message", () => {
    const error = errorFromResponse(401, body(ErrorCode.InvalidCredentials, "The credentials are not valid."), null);
    expect(error).toBeInstanceOf(TetherClientError);
    expect(error.message).toBe("The credentials are not valid.");
    expect(error.retryable).toBe(false);
  });

  it("falls back to BAD_RESPONSE for unknown codes", () => {
    const error = errorFromResponse(418, body("TEAPOT"), null);
    expect(error.code).toBe(ClientErrorCode.BadResponse);
    expect(error.status).toBe(418);
    expect(error.retryable).toBe(false);
  });
});

describe("parseRetryAfter", () => {
  it("reads delta seconds", () => {
    expect(parseRetryAfter("0")).toBe(0);
    expect(parseRetryAfter(" 12 ")).toBe(12_000);
  });

  it("reads an HTTP date", () => {
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(parseRetryAfter("Wed, 01 Jan 2025 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Tue, 31 Dec 2024 23:00:00 GMT", now)).toBe(0);
  });

  it("ignores missing or garbage values", () => {
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter("-5")).toBeUndefined();
  });
});
