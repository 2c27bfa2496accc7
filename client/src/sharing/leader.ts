import type { TicketPayload } from "@tether/shared";
import type { SocketClient } from "../connection/socket-client.js";
import { Hub, type HubTransport } from "./hub.js";
import type { HubMessage, TabId, TabMessage } from "./protocol.js";
import type { SharedTabClient, TabLink } from "./tab-client.js";

/** What travels on the origin's BroadcastChannel: to the hub, or from it to tabs. */
type ChannelMessage = { toHub: TabMessage } | { toTabs: HubMessage };

/**
 * Builds the connection of a hub; given the latest resume ticket the tabs heard of, so
 * that the next leader reconnects with it instead of an HTTP token request.
 */
export type HubClientFactory = (ticket: TicketPayload | undefined) => SocketClient;

const never = () => new Promise<never>(() => {});

/** Holds `name` until the page goes away: others see the lock released when this tab closes or crashes. */
export function holdLock(locks: LockManager, name: string): Promise<void> {
  return new Promise((granted) => {
    locks.request(name, () => {
      granted();
      return never();
    });
  });
}

/** Calls `onGone` once the holder of `name` (a tab's lifetime lock) is gone. */
export function whenReleased(locks: LockManager | undefined, name: string, onGone: () => void): void {
  locks?.request(name, () => onGone()).catch(() => undefined);
}

/**
 * Leader election among an origin's tabs (Web Locks) with messages on a
 * BroadcastChannel: the tab holding the leader lock runs the hub, and when it
 * closes the lock passes to the next tab, whose hub says hello; every tab then
 * attaches again with its own offsets, so the new socket replays what any tab missed.
 */
export async function leaderLink(
  name: string,
  locks: LockManager,
  tab: SharedTabClient,
  hubClient: HubClientFactory,
): Promise<TabLink> {
  const channel = new BroadcastChannel(name);
  let hub: Hub | undefined;
  let ticket: TicketPayload | undefined;
  channel.onmessage = (event: MessageEvent<ChannelMessage>) => {
    if (!("toTabs" in event.data)) return;
    const message = event.data.toTabs;
    if (message.kind === "ticket") ticket = message.ticket;
    if ("to" in message && message.to !== undefined && !message.to.includes(tab.tab)) return;
    tab.receive(message);
  };
  // Held for the tab's lifetime before it attaches, so a hub never mistakes it for gone.
  await holdLock(locks, tabLock(name, tab.tab));
  locks
    .request(`${name}:leader`, () => {
      hub = new Hub(
        hubClient(ticket),
        leaderTransport(name, locks, (message) => hub?.receive(message)),
      );
      return never();
    })
    .catch(() => undefined);
  return {
    send: (message) => channel.postMessage({ toHub: message } satisfies ChannelMessage),
    mode: () => (hub ? "leader" : "follower"),
    socket: () => hub?.client.socket,
  };
}

/** The lock a tab holds while it lives. */
export function tabLock(name: string, tab: TabId): string {
  return `${name}:tab:${tab}`;
}

/** The hub's side of the channel: its own BroadcastChannel object, so its own tab hears it too. */
function leaderTransport(name: string, locks: LockManager, receive: (message: TabMessage) => void): HubTransport {
  const channel = new BroadcastChannel(name);
  channel.onmessage = (event: MessageEvent<ChannelMessage>) => {
    if ("toHub" in event.data) receive(event.data.toHub);
  };
  return {
    send: (message) => channel.postMessage({ toTabs: message } satisfies ChannelMessage),
    watchTab: (tab, onGone) => whenReleased(locks, tabLock(name, tab), onGone),
  };
}
