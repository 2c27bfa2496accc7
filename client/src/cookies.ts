/** Any fetch with the standard signature; `globalThis.fetch` fits. */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** Wraps a fetch so it keeps cookies: the Node entry's cookie jar. */
export type CookieJarWrapper = (base: FetchLike) => Promise<FetchLike>;

/** True in a browser (or a browser-like test DOM), where the browser keeps the cookies. */
export function isBrowser(): boolean {
  return typeof window !== "undefined" && typeof document !== "undefined";
}

/**
 * True where the platform sends the page's cookies with a Socket.IO handshake: a
 * browser page, or a worker of one (a SharedWorker holding the shared socket).
 */
export function sendsCookiesWithHandshake(): boolean {
  return isBrowser() || typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined";
}

/**
 * The fetch the client uses, resolved once and lazily: a custom one as given; in a
 * browser the global fetch (the browser keeps the session cookie); elsewhere the
 * global fetch wrapped with `withCookieJar` when the entry point has one (the Node
 * entry: a cookie jar of this client's own, so the session cookie set by login is
 * sent back on every request), else the global fetch as it is.
 */
export function fetchResolver(
  custom: FetchLike | undefined,
  withCookieJar: CookieJarWrapper | undefined,
): () => Promise<FetchLike> {
  let resolved: Promise<FetchLike> | undefined;
  return () => {
    if (custom) return Promise.resolve(custom);
    if (!resolved) {
      const pending =
        isBrowser() || !withCookieJar
          ? Promise.resolve().then(globalFetch)
          : Promise.resolve().then(() => withCookieJar(globalFetch()));
      // A failed resolution is retried on the next request rather than cached.
      pending.catch(() => {
        if (resolved === pending) resolved = undefined;
      });
      resolved = pending;
    }
    return resolved;
  };
}

function globalFetch(): FetchLike {
  if (typeof globalThis.fetch !== "function") throw new Error("No global fetch: pass the `fetch` option");
  return globalThis.fetch.bind(globalThis);
}
