import {
  ErrorCode,
  type LoginResponse,
  Route,
  SESSION_GONE_CODES,
  type SessionResponse,
  type WsTokenResponse,
} from "@tether/shared";
import { errorFromFetchFailure, errorFromResponse } from "./classify.js";
import type { FetchLike } from "./cookies.js";
import { ClientErrorCode, TetherClientError } from "./errors.js";

export interface HttpOptions {
  /** Origin of the server, e.g. `http://127.0.0.1:3000`. */
  origin: string;
  /** Prefix of the routes: "" or e.g. `/tether`. */
  basePath: string;
  fetch: () => Promise<FetchLike>;
  /** Bounds each request, body included. */
  timeoutMs: number;
}

interface JsonResponse {
  status: number;
  body: unknown;
}

/** What `client.login` sends: an API key, or any JSON object for the host's own login check. */
export type LoginCredentials = string | Readonly<Record<string, unknown>>;

/** The contract's auth routes. Every failure rejects with a {@link TetherClientError}. */
export class TetherHttp {
  constructor(private readonly options: HttpOptions) {}

  /** A string is the built-in login's API key (`{"apiKey"}`); an object is sent as the body. */
  async login(credentials: LoginCredentials): Promise<LoginResponse> {
    await this.send("POST", Route.Login, typeof credentials === "string" ? { apiKey: credentials } : credentials);
    return { authenticated: true };
  }

  async logout(): Promise<void> {
    await this.send("POST", Route.Logout);
  }

  async session(): Promise<SessionResponse> {
    const { status, body } = await this.send("GET", Route.Session);
    const expiresAt = field(body, "expiresAt");
    if (field(body, "authenticated") !== true || typeof expiresAt !== "number") throw badBody(status, Route.Session);
    return { authenticated: true, expiresAt };
  }

  /** A fresh single-use WS token. */
  async wsToken(): Promise<WsTokenResponse> {
    const { status, body } = await this.send("POST", Route.WsToken);
    const token = field(body, "token");
    const expiresAt = field(body, "expiresAt");
    if (typeof token !== "string" || token === "" || typeof expiresAt !== "number")
      throw badBody(status, Route.WsToken);
    return { token, expiresAt };
  }

  /**
   * A fresh single-use WS token from the host's token route (`tokenUrl`, absolute): POSTed as
   * Tether's own, `{ token, expiresAt? }` read back. A 401 or 403 without a more precise code
   * is the host saying its session is gone: UNAUTHORIZED.
   */
  async hostToken(url: string): Promise<{ token: string; expiresAt?: number }> {
    let response: JsonResponse;
    try {
      response = await this.request("POST", url);
    } catch (err) {
      throw hostRefusal(err);
    }
    const token = field(response.body, "token");
    const expiresAt = field(response.body, "expiresAt");
    if (typeof token !== "string" || token === "") throw badBody(response.status, "the token URL");
    return typeof expiresAt === "number" ? { token, expiresAt } : { token };
  }

  private send(method: "GET" | "POST", route: string, json?: unknown): Promise<JsonResponse> {
    return this.request(method, new URL(`${this.options.basePath}${route}`, this.options.origin).href, json);
  }

  private async request(method: "GET" | "POST", url: string, json?: unknown): Promise<JsonResponse> {
    const { timeoutMs } = this.options;
    const fetchFn = await this.options.fetch();
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    try {
      const response = await fetchFn(url, {
        method,
        credentials: "include",
        headers:
          json === undefined
            ? { accept: "application/json" }
            : { "content-type": "application/json", accept: "application/json" },
        body: json === undefined ? undefined : JSON.stringify(json),
        signal: controller.signal,
      });
      const body = parseJson(await response.text());
      if (!response.ok) throw errorFromResponse(response.status, body, response.headers.get("retry-after"));
      return { status: response.status, body };
    } catch (err) {
      if (err instanceof TetherClientError) throw err;
      throw errorFromFetchFailure(err, timedOut, timeoutMs);
    } finally {
      clearTimeout(timer);
    }
  }
}

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function field(body: unknown, name: string): unknown {
  return typeof body === "object" && body !== null ? (body as Record<string, unknown>)[name] : undefined;
}

/** A host token route's 401 or 403 as UNAUTHORIZED, unless it carries a code the client already acts on. */
function hostRefusal(err: unknown): unknown {
  if (!(err instanceof TetherClientError) || (err.status !== 401 && err.status !== 403)) return err;
  if (err.code === ErrorCode.OriginForbidden || SESSION_GONE_CODES.has(err.code as ErrorCode)) return err;
  return new TetherClientError({
    code: ClientErrorCode.Unauthorized,
    message: err.message,
    status: err.status,
    cause: err,
  });
}

function badBody(status: number, route: string): TetherClientError {
  return new TetherClientError({
    code: ClientErrorCode.BadResponse,
    message: `Unexpected response body from ${route}`,
    status,
    retryable: true,
  });
}
