import { ErrorCode } from "@tether/shared";
import { describe, expect, it } from "vitest";
import type { FetchLike } from "../src/cookies.js";
import { ClientErrorCode, TetherClientError } from "../src/errors.js";
import { TetherHttp } from "../src/http.js";

interface Call {
  url: string;
  init: RequestInit | undefined;
}

function httpWith(respond: (call: Call) => Response | Promise<Response>, timeoutMs = 1000) {
  const calls: Call[] = [];
  const fetch: FetchLike = async (url, init) => {
    const call = { url, init };
    calls.push(call);
    return respond(call);
  };
  return {
    http: new TetherHttp({ origin: "http://tether.test", basePath: "", fetch: async () => fetch, timeoutMs }),
    calls,
  };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

async function rejection(promise: Promise<unknown>): Promise<TetherClientError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TetherClientError);
  return err as TetherClientError;
}

describe("TetherHttp", () => {
  it("logs in with credentials included and a JSON body", async () => {
    const { http, calls } = httpWith(() => json(200, { authenticated: true }));
    await expect(http.login("key")).resolves.toEqual({ authenticated: true });
    expect(calls[0]?.url).toBe("http://tether.test/api/auth/login");
    expect(calls[0]?.init?.method).toBe("POST");
    expect(calls[0]?.init?.credentials).toBe("include");
    expect(calls[0]?.init?.body).toBe('{"apiKey":"key"}');
  });

  it("sends an object as the login body, for a host's own check", async () => {
    const { http, calls } = httpWith(() => json(200, { authenticated: true }));
    await http.login({ username: "alice", password: "wonderland" });
    expect(calls[0]?.init?.body).toBe('{"username":"alice","password":"wonderland"}');
    expect(new Headers(calls[0]?.init?.headers).get("content-type")).toBe("application/json");
  });

  it("rejects a bad login with the server's code, status and retryable", async () => {
    const { http } = httpWith(() => json(401, { error: { code: ErrorCode.InvalidCredentials, message: "no" } }));
    const err = await rejection(http.login("bad"));
    expect([err.code, err.status, err.retryable, err.message]).toEqual([
      ErrorCode.InvalidCredentials,
      401,
      false,
      "no",
    ]);
  });

  it("returns a fresh token each call", async () => {
    let n = 0;
    const { http, calls } = httpWith(() => json(200, { token: `t${++n}`, expiresAt: 1 }));
    expect((await http.wsToken()).token).toBe("t1");
    expect((await http.wsToken()).token).toBe("t2");
    expect(calls.map((c) => [c.url, c.init?.method])).toEqual([
      ["http://tether.test/api/auth/ws-token", "POST"],
      ["http://tether.test/api/auth/ws-token", "POST"],
    ]);
  });

  it("treats a malformed token body as a retryable bad response", async () => {
    const { http } = httpWith(() => json(200, { nope: true }));
    const err = await rejection(http.wsToken());
    expect([err.code, err.retryable]).toEqual([ClientErrorCode.BadResponse, true]);
  });

  it("reads Retry-After on 429", async () => {
    const { http } = httpWith(() =>
      json(429, { error: { code: ErrorCode.RateLimited, message: "slow" } }, { "retry-after": "3" }),
    );
    const err = await rejection(http.wsToken());
    expect([err.code, err.retryAfterMs]).toEqual([ErrorCode.RateLimited, 3000]);
  });

  it("times out a request that never answers", async () => {
    const { http } = httpWith(
      ({ init }) =>
        new Promise<Response>((_resolve, reject) => {
          init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
        }),
      20,
    );
    const err = await rejection(http.wsToken());
    expect(err.code).toBe(ClientErrorCode.Timeout);
  });

  it("reports a network failure", async () => {
    const { http } = httpWith(() => Promise.reject(new TypeError("fetch failed")));
    const err = await rejection(http.session());
    expect([err.code, err.retryable]).toEqual([ClientErrorCode.Network, true]);
  });

  it("reads the session, and rejects SESSION_REQUIRED when there is none", async () => {
    const ok = httpWith(() => json(200, { authenticated: true, expiresAt: 42 }));
    await expect(ok.http.session()).resolves.toEqual({ authenticated: true, expiresAt: 42 });
    const none = httpWith(() => json(401, { error: { code: ErrorCode.SessionRequired, message: "log in" } }));
    expect((await rejection(none.http.session())).code).toBe(ErrorCode.SessionRequired);
  });

  it("accepts the 204 of logout", async () => {
    const { http } = httpWith(() => new Response(null, { status: 204 }));
    await expect(http.logout()).resolves.toBeUndefined();
  });
});
