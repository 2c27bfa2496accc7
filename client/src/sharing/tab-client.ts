import { watchBrowserWake } from "../browser.js";
import { ClientErrorCode, TetherClientError } from "../errors.js";
import { ClientFacade } from "../facade.js";
import { type ClientStats, type ConnectionStats, type SharingMode, StatsRecorder } from "../stats.js";
import type { TetherSocket, TetherState } from "../types.js";
import { HubRequests } from "./hub-requests.js";
import { fromWireError, type HubMessage, randomId, type TabMessage, toWireError } from "./protocol.js";

/** How a tab reaches the hub: a SharedWorker's port, or the leader election's channel. */
export interface TabLink {
  send(message: TabMessage): void;
  /** How this tab is served right now. */
  mode(): SharingMode;
  /** The socket, when this tab owns it (the leader). */
  socket(): TetherSocket | undefined;
}

/**
 * A tab's client when tabs share one connection: the same API as a client with a
 * socket of its own, served by the hub. The tab keeps its own offsets (in its
 * `sessionStorage`), so it filters duplicates and resumes from what it delivered,
 * whoever holds the socket.
 */
export class SharedTabClient extends ClientFacade {
  readonly tab = randomId();
  protected readonly requests = new HubRequests(this.tab, (message) => this.send(message));
  private link: TabLink | undefined;
  /** The state while not wanting the connection: after `disconnect`, or the hub's stop. */
  private idleState: "closed" | "unauthenticated" = "closed";
  private hub: string | undefined;
  private hubState: TetherState = "closed";
  /** The connection's own figures, as the hub reported them last. */
  private hubStats: ConnectionStats = new StatsRecorder().snapshot();
  private tabs = 1;
  private unwatchBrowser: (() => void) | undefined;
  /** The app's token source (its `getToken`, or the token route through its `fetch`), run when a worker asks. */
  tokenSource: (() => Promise<{ token: string }>) | undefined;

  /** Serve this tab through `link` (again, after a fallback): the hub learns the tab's state. */
  attach(link: TabLink): void {
    this.link = link;
    this.sendAttach();
  }

  /** A message from the hub. */
  receive(message: HubMessage): void {
    if (message.kind === "hello") {
      // A new hub (the first, or the next leader after the last one's tab closed): requests
      // in flight to the old one are lost; tell the new one who we are.
      if (message.hub !== this.hub) this.requests.failAll();
      this.hub = message.hub;
      this.sendAttach();
      return;
    }
    // The first word from a hub that was there before us; anything from an older hub is stale.
    this.hub ??= message.hub;
    if (message.hub !== this.hub) return;
    switch (message.kind) {
      case "status":
        this.hubState = message.state;
        this.hubStats = message.stats;
        this.tabs = message.tabs;
        if (message.stopped && this.active)
          this.stop(message.state === "unauthenticated" ? "unauthenticated" : "closed");
        this.showState();
        break;
      case "event":
        this.deliver(message.event, message.args);
        break;
      case "error":
        if (this.active) this.reportError(fromWireError(message.error));
        break;
      case "reply":
        this.requests.settle(message.id, message.value, message.error && fromWireError(message.error));
        break;
      case "ticket":
        break;
      case "token-request":
        this.answerToken(message.id);
        break;
    }
  }

  get socket(): TetherSocket {
    const socket = this.link?.socket();
    if (socket) return socket;
    throw new TetherClientError({
      code: ClientErrorCode.SharedConnection,
      message: "This tab shares another's connection: it has no socket of its own (use client.on and client.emit)",
    });
  }

  stats(): ClientStats {
    return { mode: this.link?.mode() ?? "tab", tabs: this.tabs, ...this.hubStats };
  }

  connect(): this {
    if (this.active) return this;
    this.active = true;
    this.unwatchBrowser = watchBrowserWake(() => this.requests.fire("wake", []));
    this.showState();
    this.send({ kind: "connect", tab: this.tab });
    return this;
  }

  disconnect(): void {
    if (!this.active) return;
    this.stop("closed");
    this.send({ kind: "disconnect", tab: this.tab });
  }

  reconnectNow(): void {
    if (this.active) this.requests.fire("reconnectNow", []);
  }

  protected stop(final: "closed" | "unauthenticated"): void {
    this.active = false;
    this.idleState = final;
    this.unwatchBrowser?.();
    this.unwatchBrowser = undefined;
    this.requests.failAll();
    this.showState();
  }

  private showState(): void {
    // While the hub is not yet up for this tab, the tab is connecting.
    const hubState = this.hubState === "closed" || this.hubState === "unauthenticated" ? "connecting" : this.hubState;
    this.setState(this.active ? hubState : this.idleState);
  }

  /** What the tab tells a hub it has not met: whether it wants the connection, its offsets and rooms. */
  private sendAttach(): void {
    this.send({
      kind: "attach",
      tab: this.tab,
      wants: this.active,
      offsets: this.offsets.all(),
      rooms: Object.keys(this.offsets.rooms()),
    });
  }

  /** Runs the app's token source for the worker, and sends back the token or the error. */
  private answerToken(id: number): void {
    const source = this.tokenSource;
    if (!source) {
      this.send({ kind: "token", tab: this.tab, id, error: toWireError(new Error("This tab has no token source")) });
      return;
    }
    source().then(
      ({ token }) => this.send({ kind: "token", tab: this.tab, id, token }),
      (error: unknown) => this.send({ kind: "token", tab: this.tab, id, error: toWireError(error) }),
    );
  }

  private send(message: TabMessage): void {
    this.link?.send(message);
  }
}
