/**
 * The SharedWorker that owns one Tether connection for every tab of an origin:
 * load it with `sharedWorkerUrl` (shipped as `dist/tether-worker.js`, served by
 * the Tether server at `<basePath>/tether-worker.js`). Not an API: tabs talk to
 * it through `createTetherClient`.
 *
 * @packageDocumentation
 */

import { CLIENT_DEFAULTS } from "@tether/shared";
import { connectionConfig } from "./config.js";
import { Hub, type HubTransport, hubConnection } from "./sharing/hub.js";
import { tabLock, whenReleased } from "./sharing/leader.js";
import type { TabId, TabMessage } from "./sharing/protocol.js";
import { TabTokens } from "./sharing/tab-tokens.js";

interface SharedWorkerScope {
  name: string;
  onconnect: ((event: MessageEvent) => void) | null;
}

const scope = globalThis as unknown as SharedWorkerScope;
const ports = new Map<TabId, MessagePort>();
let hub: Hub | undefined;

const transport: HubTransport = {
  send(message) {
    const to = "to" in message && message.to !== undefined ? message.to : [...ports.keys()];
    for (const tab of to) ports.get(tab)?.postMessage(message);
  },
  watchTab(tab, onGone) {
    whenReleased(navigator.locks, tabLock(scope.name, tab), () => {
      ports.delete(tab);
      onGone();
    });
  },
};

scope.onconnect = (event) => {
  const port = event.ports[0];
  if (!port) return;
  port.onmessage = (message: MessageEvent<TabMessage>) => {
    const data = message.data;
    if (data.kind === "attach") {
      ports.set(data.tab, port);
      if (!hub && data.options) {
        const { tokenFromTabs, ...options } = data.options;
        // The app's getToken or fetch lives in the tabs: each token is asked of one of them.
        const tokens = tokenFromTabs
          ? new TabTokens(options.tokenRequestTimeoutMs ?? CLIENT_DEFAULTS.tokenRequestTimeoutMs)
          : undefined;
        const config = connectionConfig(tokens ? { ...options, getToken: () => tokens.request() } : options, undefined);
        hub = new Hub(hubConnection(config), transport, tokens);
      }
    }
    hub?.receive(data);
    if (data.kind === "detach") ports.delete(data.tab);
  };
  port.start();
};
