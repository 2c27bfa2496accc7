import {
  createTetherClient,
  type FetchLike,
  type TetherClient,
  type TetherClientOptions,
  type TetherState,
} from "@tether/client";
import type { DemoEvents, WelcomePayload } from "@tether/shared";
import fetchCookie from "fetch-cookie";
import type { ManagerOptions } from "socket.io-client";
import { CookieJar } from "tough-cookie";
import { fetchFrom, nextClientAddress } from "./address.js";
import { localAddressOption } from "./http.js";
import { waitFor } from "./wait.js";

/** A real @tether/client in Node, with everything a test wants to look at recorded. */
export interface TestClient {
  readonly client: TetherClient<DemoEvents>;
  /** Every state it went through, in order. */
  readonly states: TetherState[];
  /** Every WS token it fetched, in order. */
  readonly tokens: string[];
  readonly welcomes: WelcomePayload[];
  /** The newest resume ticket it holds (from a welcome or a pushed `ticket` event). */
  latestTicket(): string | undefined;
  /** The cookie jar: share it (and `address`) to make a second tab of the same browser. */
  readonly jar: CookieJar;
  /** The loopback address its HTTP requests and sockets leave from (its own unless given). */
  readonly address: string;
  /** Resolves when the client is connected and welcomed `count` times in all. */
  welcomed(count: number, timeoutMs?: number): Promise<WelcomePayload>;
  waitForState(state: TetherState, timeoutMs?: number): Promise<void>;
  /** POSTs JSON with this client's cookies (e.g. to start a job as its user). */
  post(path: string, body?: unknown): Promise<Response>;
}

/** Fast reconnects for tests: the backoff still grows and stays jittered. */
export const FAST_CLIENT: TetherClientOptions = {
  reconnectBaseDelayMs: 20,
  reconnectMaxDelayMs: 400,
  tokenRequestTimeoutMs: 2_000,
  transports: ["websocket"],
};

/** `ca`: a PEM certificate to trust over HTTPS and WSS (a test's self-signed one). */
export function startClient(
  url: string,
  options: TetherClientOptions & { jar?: CookieJar; address?: string; ca?: string } = {},
): TestClient {
  const { ca, ...clientOptions } = options;
  const jar = options.jar ?? new CookieJar();
  const address = options.address ?? nextClientAddress();
  const tokens: string[] = [];
  const cookieFetch = fetchCookie(fetchFrom(address, { ca }), jar) as unknown as FetchLike;
  const recordingFetch: FetchLike = async (input, init) => {
    const res = await cookieFetch(input, init);
    if (String(input).endsWith("/api/auth/ws-token") && res.ok) {
      const body = (await res.clone().json()) as { token: string };
      tokens.push(body.token);
    }
    return res;
  };
  const client = createTetherClient<DemoEvents>({
    ...FAST_CLIENT,
    ...clientOptions,
    url,
    fetch: recordingFetch,
    socketOptions: {
      ...localAddressOption(address),
      ...(ca === undefined ? {} : ({ ca } as Partial<ManagerOptions>)),
      ...options.socketOptions,
    },
  });
  const states: TetherState[] = [];
  const welcomes: WelcomePayload[] = [];
  client.on("state", (state) => states.push(state));
  let ticket: string | undefined;
  client.on("welcome", (welcome) => {
    welcomes.push(welcome);
    ticket = welcome.ticket ?? ticket;
  });
  // Pushed refreshes (every half ticket life) go to the raw socket; the SDK keeps them to itself.
  client.socket.on("ticket", (payload: { ticket: string }) => {
    ticket = payload.ticket;
  });
  return {
    latestTicket: () => ticket,
    client,
    states,
    tokens,
    welcomes,
    jar,
    address,
    welcomed: async (count, timeoutMs = 15_000) => {
      await waitFor(`welcome #${count}`, () => welcomes.length >= count && client.state === "connected", { timeoutMs });
      return welcomes[count - 1] as WelcomePayload;
    },
    post: (path, body) =>
      cookieFetch(new URL(path, url).href, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    waitForState: async (state, timeoutMs = 15_000) => {
      await waitFor(`state ${state} (now ${client.state})`, () => client.state === state, { timeoutMs });
    },
  };
}

/**
 * A client that is logged in (with `apiKey`, or through the session already in
 * `jar`: another tab), connected and welcomed. Pushed to `opened` so the test
 * file can close them all.
 */
export async function connectedClient(
  url: string,
  apiKey: string,
  opened: TestClient[],
  options: TetherClientOptions & { jar?: CookieJar; address?: string } = {},
): Promise<TestClient> {
  const t = startClient(url, options);
  opened.push(t);
  if (!options.jar) await t.client.login(apiKey);
  t.client.connect();
  await t.welcomed(1);
  return t;
}
