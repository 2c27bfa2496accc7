/**
 * The Tether client SDK, Node entry point (export condition `node`): the same API as
 * the browser entry, plus a cookie jar of the client's own for the session cookie.
 *
 * @packageDocumentation
 */

import type { TetherEvents } from "@tether/shared";
import { withCookieJar } from "./cookie-jar.js";
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
 * Outside a browser, and unless `fetch` is given, the client keeps the session cookie
 * in a cookie jar of its own (fetch-cookie + tough-cookie, loaded on first use).
 *
 * @example
 * ```ts
 * import { createTetherClient } from "@tether/client";
 *
 * const client = createTetherClient({ url: "http://127.0.0.1:3000" });
 * client.on("state", (state) => console.log("state:", state));
 * client.on("job:progress", ({ step, steps }) => console.log(`${step}/${steps}`));
 * client.on("error", (err) => console.warn(err.code, err.message));
 *
 * await client.login(process.env.TETHER_API_KEY ?? "");
 * client.connect();
 * // later: await client.echo({ hello: "world" }); await client.logout();
 * ```
 */
export function createTetherClient<E extends TetherEvents = TetherEvents>(
  options: TetherClientOptions = {},
): TetherClient<E> {
  // The event map is types only: one implementation serves every map.
  return createClient(options, withCookieJar) as unknown as TetherClient<E>;
}
