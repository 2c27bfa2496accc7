import { ClientErrorCode, TetherClientError } from "../errors.js";
import { fromWireError, type HubMessage, type TabId, type WireError } from "./protocol.js";

interface Pending {
  resolve: (token: { token: string }) => void;
  reject: (error: TetherClientError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** What the token broker needs of its hub: a tab to ask, and the way to it. */
export interface TokenAsker {
  /** The tabs that may run the app's token source, those that want the connection first. */
  tabs(): TabId[];
  send(message: HubMessage): void;
  readonly hub: string;
}

/**
 * A SharedWorker's token source when the app gives `getToken` or a custom `fetch`:
 * functions cannot reach a worker, so the worker asks an attached tab, which runs the
 * app's own token source and answers over its port. Each ask goes to the next tab in
 * turn, so a frozen or closing tab costs one timeout, and the connection's backoff
 * retries as after any failed token request.
 */
export class TabTokens {
  private nextId = 0;
  private turn = 0;
  private readonly pending = new Map<number, Pending>();
  private asker: TokenAsker | undefined;

  constructor(private readonly timeoutMs: number) {}

  /** The hub to send asks through, once it exists. */
  bind(asker: TokenAsker): void {
    this.asker = asker;
  }

  /** A fresh token from a tab; rejects with a retryable error when no tab answers in time. */
  request(): Promise<{ token: string }> {
    const tabs = this.asker?.tabs() ?? [];
    const tab = tabs[this.turn++ % Math.max(1, tabs.length)];
    const asker = this.asker;
    if (tab === undefined || asker === undefined)
      return Promise.reject(
        new TetherClientError({ code: ClientErrorCode.Network, message: "No tab attached to ask for a token" }),
      );
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new TetherClientError({
            code: ClientErrorCode.Timeout,
            message: `No token from a tab within ${this.timeoutMs} ms`,
          }),
        );
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      asker.send({ kind: "token-request", hub: asker.hub, to: [tab], id });
    });
  }

  /** A tab's answer to ask `id`. */
  settle(id: number, token: string | undefined, error: WireError | undefined): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (typeof token === "string" && token !== "") pending.resolve({ token });
    else
      pending.reject(
        error
          ? fromWireError(error)
          : new TetherClientError({ code: ClientErrorCode.BadResponse, message: "no token" }),
      );
  }
}
