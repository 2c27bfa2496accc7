import type { HubMessage, HubOptions, TabMessage } from "./protocol.js";
import type { SharedTabClient, TabLink } from "./tab-client.js";

/**
 * The tab's side of the SharedWorker that owns the origin's connection. Calls
 * `onFailure` (once) when the worker cannot serve: its script failed to load or
 * run, or the options cannot be sent to it.
 */
export function workerLink(
  url: string | URL,
  name: string,
  tab: SharedTabClient,
  options: HubOptions,
  onFailure: (cause: unknown) => void,
): TabLink | undefined {
  let worker: SharedWorker;
  try {
    worker = new SharedWorker(url, { name });
  } catch (cause) {
    onFailure(cause);
    return undefined;
  }
  let failed = false;
  const fail = (cause: unknown) => {
    if (failed) return;
    failed = true;
    worker.port.close();
    onFailure(cause);
  };
  worker.onerror = (event) => fail(event);
  worker.port.onmessage = (event: MessageEvent<HubMessage>) => {
    if (!failed) tab.receive(event.data);
  };
  worker.port.start();
  // Tell the worker early when the page goes for good; the tab's lock covers crashes.
  addEventListener("pagehide", (event) => {
    if (!event.persisted) worker.port.postMessage({ kind: "detach", tab: tab.tab } satisfies TabMessage);
  });
  return {
    send(message) {
      if (failed) return;
      try {
        worker.port.postMessage(message.kind === "attach" ? { ...message, options } : message);
      } catch (cause) {
        // DataCloneError: an option the worker cannot receive (a function in socketOptions).
        fail(cause);
      }
    },
    mode: () => "worker",
    socket: () => undefined,
  };
}
