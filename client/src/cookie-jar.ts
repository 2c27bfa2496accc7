import type { FetchLike } from "./cookies.js";

/**
 * Node and other non-browser runtimes only (the Node entry point): the session cookie
 * kept in a jar of this client's own. The imports are dynamic so a client given its
 * own `fetch` never loads them; browser bundles resolve the browser entry, which
 * never imports this file.
 */
export async function withCookieJar(base: FetchLike): Promise<FetchLike> {
  const [{ default: fetchCookie }, { CookieJar }] = await Promise.all([import("fetch-cookie"), import("tough-cookie")]);
  return fetchCookie(base, new CookieJar());
}
