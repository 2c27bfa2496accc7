import { connectionConfig } from "./config.js";
import { SocketClient } from "./connection/socket-client.js";
import { type CookieJarWrapper, isBrowser } from "./cookies.js";
import { sharedClient } from "./sharing/choose.js";
import type { TetherClient, TetherClientOptions } from "./types.js";

/**
 * `createTetherClient` of both entry points; they differ only in `withCookieJar`
 * (the Node entry's cookie jar, absent from the browser entry).
 */
export function createClient(options: TetherClientOptions, withCookieJar: CookieJarWrapper | undefined): TetherClient {
  const config = connectionConfig(options, withCookieJar);
  // In a browser, one connection serves every tab of the origin unless the app opts out.
  const shared = isBrowser() && options.share !== "tab" ? sharedClient(options, config) : undefined;
  return shared ?? new SocketClient(config);
}
