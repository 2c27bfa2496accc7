/**
 * The Tether client SDK, browser entry point (export conditions `browser` and
 * `default`): the same API as the Node entry, without its cookie jar, so bundles
 * never include Node-only code. The browser keeps the session cookie.
 *
 * @packageDocumentation
 */

import type { TetherEvents } from "@tether/shared";
import { createClient } from "./create.js";
import type { TetherClient, TetherClientOptions } from "./types.js";

export * from "./public.js";

/**
 * Creates a Tether client. Nothing happens on the network until `login`, `session`
 * or `connect` is called; the state starts as `"closed"`.
 *
 * The connection fetches a fresh single-use token (`POST /api/auth/ws-token`) before
 * every connect and reconnect, reconnects on its own with exponential backoff and
 * jitter, and resumes the event stream from `lastOffset`. It gives up only when the
 * server says the login session is gone (state `"unauthenticated"`) or the origin is
 * forbidden (state `"closed"`, with an `"error"` event); it never logs out on an error.
 *
 * This build uses the global `fetch` and leaves cookies to the runtime (a browser or
 * a web worker keeps them). Elsewhere pass a `fetch` that keeps the session cookie.
 *
 * @example
 * ```ts
 * import { createTetherClient } from "@tether/client";
 *
 * const client = createTetherClient(); // the page's own origin
 * client.on("state", (state) => render(state));
 * client.on("recovery", ({ recovered }) => { if (!recovered) refetchEverything(); });
 * await client.login(apiKey);
 * client.connect();
 * ```
 */
export function createTetherClient<E extends TetherEvents = TetherEvents>(
  options: TetherClientOptions = {},
): TetherClient<E> {
  // The event map is types only: one implementation serves every map.
  return createClient(options, undefined) as unknown as TetherClient<E>;
}
