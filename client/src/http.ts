import { type LoginResponse, Route, type SessionResponse, type WsTokenResponse } from "@tether/shared";
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

  private async send(method: "GET" | "POST", route: string, json?: unknown): Promise<JsonResponse> {
    const { timeoutMs } = this.options;
    const fetchFn = await this.options.fetch();
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    try {
      const response = await fetchFn(new URL(`${this.options.basePath}${route}`, this.options.origin).href, {
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

function badBody(status: number, route: string): TetherClientError {
  return new TetherClientError({
    code: ClientErrorCode.BadResponse,
    message: `Unexpected response body from ${route}`,
    status,
    retryable: true,
  });
}
