import type { HandshakeErrorData, WelcomePayload } from "@tether/shared";
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import { fetchFrom, nextClientAddress } from "./address.js";

/** A logged-in browser, reduced to its cookie (and the address it logged in from): enough to drive the HTTP contract by hand. */
export interface TestSession {
  cookie: string;
  address?: string;
}

/** POSTs JSON (or a raw string body) and returns status, headers and the parsed body. */
export async function post(url: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
  };
}

/** Logs in as a new browser, from a loopback address of its own (`from`, or a fresh one). */
export function login(
  baseUrl: string,
  apiKey: string,
  headers: Record<string, string> = {},
  from: string = nextClientAddress(),
): Promise<TestSession> {
  return loginWith(baseUrl, { apiKey }, headers, from);
}

/** A host login check for tests: the user the request body names (`{ user }`), any name, no password. */
export function userNamedInBody(req: { body?: unknown }): { userId: string } | null {
  const user = (req.body as { user?: unknown } | undefined)?.user;
  return typeof user === "string" ? { userId: user } : null;
}

/** Logs in as `user` where the host's login check is `userNamedInBody`. */
export function loginAs(baseUrl: string, user: string): Promise<TestSession> {
  return loginWith(baseUrl, { user });
}

async function loginWith(
  baseUrl: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
  from: string = nextClientAddress(),
): Promise<TestSession> {
  const res = await fetchFrom(from)(`${baseUrl}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  const setCookie = res.headers.get("set-cookie") ?? "";
  return { cookie: setCookie.split(";")[0] ?? "", address: from };
}

export async function wsToken(baseUrl: string, session: TestSession): Promise<string> {
  const res = await post(`${baseUrl}/api/auth/ws-token`, undefined, { cookie: session.cookie });
  if (res.status !== 200) throw new Error(`ws-token failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body?.token as string;
}

/** socket.io-client's option for the client side's address (ws takes it; engine.io-client's types omit it). */
export function localAddressOption(localAddress: string): Partial<ManagerOptions & SocketOptions> {
  return { localAddress } as Partial<ManagerOptions & SocketOptions>;
}

/** What a refused handshake gave the client. */
export class HandshakeRefused extends Error {
  constructor(
    readonly data: HandshakeErrorData | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** A connected raw socket and the `welcome` it got right after connecting. */
export type WelcomedSocket = Socket & {
  welcome: WelcomePayload;
  /** Every event received since the handshake, in order (listeners added later miss early ones). */
  received: [event: string, payload: unknown][];
};

/** How long `connectRaw` keeps retrying handshakes that admission control turned away as busy. */
const BUSY_RETRY_DEADLINE_MS = 15_000;

/**
 * Connects a raw socket.io-client with `auth`; resolves once welcomed, rejects with the
 * connect_error. A handshake refused as busy (UNAVAILABLE with a `retryAfterMs` hint: admission
 * control on a loaded box; the credential is not spent) is retried after the hint, as the SDK
 * does, unless `retryBusy` is false (tests of admission control itself).
 */
export async function connectRaw(
  baseUrl: string,
  auth: unknown,
  options: { extraHeaders?: Record<string, string>; localAddress?: string; retryBusy?: boolean } = {},
): Promise<WelcomedSocket> {
  const localAddress = options.localAddress ?? nextClientAddress();
  const deadline = Date.now() + BUSY_RETRY_DEADLINE_MS;
  for (;;) {
    try {
      return await connectOnce(baseUrl, auth, { ...options, localAddress });
    } catch (err) {
      const hint = err instanceof HandshakeRefused ? err.data?.retryAfterMs : undefined;
      if (options.retryBusy === false || hint === undefined || Date.now() + hint > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, Math.min(hint, 1_000)));
    }
  }
}

/** One handshake (the listener is in place before connecting, as `welcome` can arrive with the connect). */
function connectOnce(
  baseUrl: string,
  auth: unknown,
  options: { extraHeaders?: Record<string, string>; localAddress: string },
): Promise<WelcomedSocket> {
  const socket = io(baseUrl, {
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    auth: auth as Record<string, unknown>,
    extraHeaders: options.extraHeaders,
    // Passed on to ws (engine.io-client picks it), so each raw client has an address of its own.
    ...localAddressOption(options.localAddress),
  });
  const received: [string, unknown][] = [];
  socket.onAny((event: string, payload: unknown) => received.push([event, payload]));
  return new Promise((resolve, reject) => {
    socket.once("welcome", (welcome: WelcomePayload) => resolve(Object.assign(socket, { welcome, received })));
    // A CONNECT packet the server cannot parse closes the transport without a connect_error.
    // (Deferred: a refusal's connect_error is decoded a tick after the close that follows it.)
    socket.io.once("close", (reason: string) => setTimeout(() => reject(new HandshakeRefused(undefined, reason)), 0));
    socket.once("connect_error", (err: Error & { data?: HandshakeErrorData }) => {
      socket.close();
      reject(new HandshakeRefused(err.data, err.message));
    });
  });
}

/** The `connect_error` a handshake with this `auth` gets (fails the test if it connects). */
export async function refusal(
  baseUrl: string,
  auth: unknown,
  options: { localAddress?: string; extraHeaders?: Record<string, string> } = {},
): Promise<HandshakeRefused> {
  try {
    const socket = await connectRaw(baseUrl, auth, options);
    socket.close();
  } catch (err) {
    if (err instanceof HandshakeRefused) return err;
    throw err;
  }
  throw new Error("the handshake was accepted");
}
