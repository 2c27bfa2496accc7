import type { ClientConfig } from "../config.js";
import { Credentials } from "../connection/credentials.js";
import { OffsetBook } from "../offset-book.js";
import type { TetherClient, TetherClientOptions } from "../types.js";
import { hubConnection } from "./hub.js";
import { type HubClientFactory, holdLock, leaderLink, tabLock } from "./leader.js";
import { localLink } from "./local.js";
import type { HubOptions } from "./protocol.js";
import { SharedTabClient } from "./tab-client.js";
import { workerLink } from "./worker-link.js";

/**
 * A browser tab's client that shares the origin's connection: through the
 * SharedWorker at `sharedWorkerUrl`, else through a leader tab; undefined when the
 * browser can do neither (the caller gives the tab a socket of its own).
 */
export function sharedClient(options: TetherClientOptions, config: ClientConfig): TetherClient | undefined {
  const locks = typeof navigator !== "undefined" && globalThis.isSecureContext ? navigator.locks : undefined;
  const canElect = locks !== undefined && typeof BroadcastChannel === "function";
  const canUseWorker = options.sharedWorkerUrl !== undefined && typeof SharedWorker === "function";
  if (!canUseWorker && !canElect) return undefined;

  const name = `tether:${config.origin}${config.socketPath}`;
  const tab = new SharedTabClient(config.http, new OffsetBook(config.offsetStore), {
    retry: { baseMs: config.reconnectBaseDelayMs, maxMs: config.reconnectMaxDelayMs, random: config.random },
    log: config.log,
  });
  // Functions cannot reach a worker: it asks a tab for each token, and the tab runs the app's getToken or fetch
  // (or fetches the tokenUrl through the app's fetch).
  const credentials = new Credentials(config);
  tab.tokenSource = () => credentials.fetchToken();
  const hubClient: HubClientFactory = (ticket) => {
    const client = hubConnection(config);
    if (ticket) client.adoptTicket(ticket);
    return client;
  };
  const elect = () => {
    if (locks && canElect) leaderLink(name, locks, tab, hubClient).then((link) => tab.attach(link));
    else tab.attach(localLink(tab, hubClient));
  };
  if (canUseWorker && options.sharedWorkerUrl !== undefined) {
    const link = workerLink(options.sharedWorkerUrl, name, tab, hubOptions(options, config), elect);
    if (link) {
      // The worker learns the tab is gone when this lock is released.
      if (locks) holdLock(locks, tabLock(name, tab.tab)).then(() => tab.attach(link));
      else tab.attach(link);
    }
  } else elect();
  return tab;
}

/** The options a worker's hub builds the same connection from. */
function hubOptions(options: TetherClientOptions, config: ClientConfig): HubOptions {
  const {
    url: _url,
    fetch: _fetch,
    getToken: _getToken,
    random: _random,
    share: _share,
    sharedWorkerUrl: _sharedWorkerUrl,
    persistOffsets: _persistOffsets,
    logger: _logger,
    ...rest
  } = options;
  const tokenFromTabs = options.fetch !== undefined || options.getToken !== undefined;
  const { tokenUrl: _tokenUrl, ...cloneable } = rest;
  // A token URL reaches the worker (resolved against the page): it fetches it itself, unless a custom fetch must.
  if (tokenFromTabs) return { ...cloneable, url: config.origin, tokenFromTabs };
  return config.tokenUrl === undefined
    ? { ...cloneable, url: config.origin }
    : { ...cloneable, url: config.origin, tokenUrl: config.tokenUrl };
}
