import { isBrowser } from "./cookies.js";

/**
 * Calls `onWake` when the page is likely to have a broken or missing connection
 * that is worth retrying right away: back online, tab visible again, page restored
 * from the back/forward cache. Returns the function that removes the listeners.
 * Does nothing outside a browser.
 */
export function watchBrowserWake(onWake: () => void): () => void {
  if (!isBrowser()) return () => {};
  const onVisibility = () => {
    if (document.visibilityState === "visible") onWake();
  };
  window.addEventListener("online", onWake);
  window.addEventListener("pageshow", onWake);
  document.addEventListener("visibilitychange", onVisibility);
  return () => {
    window.removeEventListener("online", onWake);
    window.removeEventListener("pageshow", onWake);
    document.removeEventListener("visibilitychange", onVisibility);
  };
}

/** Whether the page is hidden (background tab); false outside a browser. */
export function isPageHidden(): boolean {
  return isBrowser() && document.visibilityState === "hidden";
}
