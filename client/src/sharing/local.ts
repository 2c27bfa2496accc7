import { Hub } from "./hub.js";
import type { HubClientFactory } from "./leader.js";
import type { SharedTabClient, TabLink } from "./tab-client.js";

/** A hub of the tab's own, for a tab that cannot share (its SharedWorker failed and it has no Web Locks). */
export function localLink(tab: SharedTabClient, hubClient: HubClientFactory): TabLink {
  const hub = new Hub(hubClient(undefined), {
    send: (message) => queueMicrotask(() => tab.receive(message)),
    watchTab: () => {},
  });
  return {
    send: (message) => queueMicrotask(() => hub.receive(message)),
    mode: () => "tab",
    socket: () => hub.client.socket,
  };
}
