import {
  type HistoryRequest,
  type Offset,
  type PresenceData,
  ServerEvent,
  type TicketPayload,
  type WelcomePayload,
} from "@tether/shared";
import type { ClientConfig } from "../config.js";
import { ticketIn } from "../connection/credentials.js";
import { SocketClient } from "../connection/socket-client.js";
import { roomOf } from "../offset.js";
import { USER_STREAM } from "../offset-book.js";
import type { TetherState } from "../types.js";
import { wireEvents } from "../wire-events.js";
import {
  type HubMessage,
  NO_REPLY,
  type RequestOp,
  randomId,
  type TabId,
  type TabMessage,
  toWireError,
} from "./protocol.js";
import type { TabTokens } from "./tab-tokens.js";

/** How the hub reaches its tabs. */
export interface HubTransport {
  send(message: HubMessage): void;
  /** Calls `onGone` once when the tab is gone (closed, crashed or navigated away), where that can be known. */
  watchTab(tab: TabId, onGone: () => void): void;
}

/**
 * The settings of a hub's connection: the tabs report wake-ups to the hub, and each
 * tab keeps its own offsets (a worker has no `sessionStorage`; a leader's is its own tab's).
 */
export function hubConnection(config: ClientConfig): SocketClient {
  return new SocketClient({ ...config, watchWake: false, offsetStore: undefined });
}

interface TabEntry {
  wants: boolean;
  rooms: Set<string>;
}

/**
 * Owns the one connection of a browser's tabs (in a SharedWorker or the leader
 * tab) and serves them: it is open while any tab wants it, forwards every event
 * to the tabs it concerns (a room's events to the tabs in that room), runs their
 * requests, and replays from the oldest offset any tab brings. Each tab filters
 * duplicates against its own offsets, so a replay for one tab is harmless to the others.
 */
export class Hub {
  readonly id = randomId();
  private readonly tabs = new Map<TabId, TabEntry>();
  /** Rooms tabs joined at run time: their events go to those tabs only (none, once all left). */
  private readonly runtimeRooms = new Set<string>();
  private welcome: WelcomePayload | undefined;
  /** The latest resume ticket, for tabs that attach later (one of them may lead next). */
  private ticket: TicketPayload | undefined;
  /** The hub itself is closing the connection (no tab wants it): not a stop to report. */
  private idling = false;

  constructor(
    readonly client: SocketClient,
    private readonly transport: HubTransport,
    /** In a worker whose app gave `getToken` or `fetch`: tokens come from the tabs. */
    private readonly tokens?: TabTokens,
  ) {
    tokens?.bind({
      hub: this.id,
      send: (message) => this.send(message),
      tabs: () => {
        const entries = [...this.tabs.entries()];
        return [...entries.filter(([, e]) => e.wants), ...entries.filter(([, e]) => !e.wants)].map(([tab]) => tab);
      },
    });
    client.on("state", (state) => this.onState(state));
    client.on("error", (error) => {
      this.send({ kind: "error", hub: this.id, error: toWireError(error) });
      // The retry is scheduled right after "error": report its time once it is.
      queueMicrotask(() => this.sendStatus());
    });
    client.socket.onAny((frameEvent: string, ...frameArgs: unknown[]) => {
      for (const [event, args] of wireEvents(frameEvent, frameArgs)) this.forward(event, args);
    });
    this.send({ kind: "hello", hub: this.id });
  }

  receive(message: TabMessage): void {
    switch (message.kind) {
      case "attach":
        this.attach(message);
        break;
      case "connect":
        this.want(message.tab, true);
        break;
      case "disconnect":
        this.want(message.tab, false);
        break;
      case "detach":
        this.detach(message.tab);
        break;
      case "request":
        this.request(message.tab, message.id, message.op, message.args);
        break;
      case "token":
        this.tokens?.settle(message.id, message.token, message.error);
        break;
    }
  }

  private attach(message: Extract<TabMessage, { kind: "attach" }>): void {
    const known = this.tabs.has(message.tab);
    this.tabs.set(message.tab, { wants: message.wants, rooms: new Set(message.rooms) });
    for (const room of message.rooms) this.runtimeRooms.add(room);
    if (!known) this.transport.watchTab(message.tab, () => this.detach(message.tab));
    // Streams the tab saw less of than this connection (a reload, a new hub): replay them from there.
    const streams = new Set([USER_STREAM, ...message.rooms]);
    const older: Record<string, Offset> = {};
    for (const [stream, offset] of Object.entries(message.offsets)) if (streams.has(stream)) older[stream] = offset;
    this.client.rewind(older);
    if (!known && this.client.state === "connected" && this.welcome) {
      // A late tab learns where each stream stands now, as a first connect would.
      const rooms = Object.fromEntries(Object.entries(this.client.roomOffsets).filter(([room]) => streams.has(room)));
      const offset = this.client.lastOffset ?? this.welcome.offset;
      this.sendEvent(ServerEvent.Welcome, [{ instance: this.welcome.instance, offset, rooms }], [message.tab]);
    }
    if (!known && this.ticket) this.send({ kind: "ticket", hub: this.id, ticket: this.ticket });
    if (message.wants) this.openConnection();
    this.sendStatus();
  }

  private want(tab: TabId, wants: boolean): void {
    const entry = this.tabs.get(tab);
    if (!entry) return;
    entry.wants = wants;
    if (wants) this.openConnection();
    else this.closeIfUnwanted();
    this.sendStatus();
  }

  private detach(tab: TabId): void {
    const entry = this.tabs.get(tab);
    if (!entry) return;
    this.tabs.delete(tab);
    for (const room of entry.rooms) if (!this.inRoom(room)) this.client.leave(room).catch(() => undefined);
    this.closeIfUnwanted();
    this.sendStatus();
  }

  private openConnection(): void {
    this.idling = false;
    this.client.connect();
  }

  private closeIfUnwanted(): void {
    if ([...this.tabs.values()].some((entry) => entry.wants)) return;
    this.idling = true;
    this.client.disconnect();
  }

  private inRoom(room: string): boolean {
    return [...this.tabs.values()].some((entry) => entry.rooms.has(room));
  }

  private request(tab: TabId, id: number, op: RequestOp, args: unknown[]): void {
    const done = this.run(tab, op, args);
    // Nobody waits for the answer: none is sent.
    if (id === NO_REPLY) {
      done.catch(() => undefined);
      return;
    }
    done.then(
      (value) => this.send({ kind: "reply", hub: this.id, to: [tab], id, value }),
      (err: unknown) => this.send({ kind: "reply", hub: this.id, to: [tab], id, error: toWireError(err) }),
    );
  }

  private async run(tab: TabId, op: RequestOp, args: unknown[]): Promise<unknown> {
    const client = this.client;
    switch (op) {
      case "emitWithAck":
        return (client.emitWithAck as (...a: unknown[]) => Promise<unknown>)(...args);
      case "emit":
        return client.emit(args[0] as string, args[1]);
      case "echo":
        return client.echo(args[0], args[1] as number | undefined);
      case "members":
        return client.members(args[0] as string);
      case "join": {
        const [room, offset, presence] = args as [string, Offset | undefined, PresenceData | undefined];
        this.tabs.get(tab)?.rooms.add(room);
        this.runtimeRooms.add(room);
        return client.join(room, { offset, presence });
      }
      case "history":
        return client.history(args[0] as HistoryRequest);
      case "setPresence":
        return client.setPresence(args[0] as string, args[1] as PresenceData);
      case "leave": {
        const room = args[0] as string;
        this.tabs.get(tab)?.rooms.delete(room);
        // Another tab still in the room keeps it joined.
        if (!this.inRoom(room)) await client.leave(room);
        return undefined;
      }
      case "reconnectNow":
        return client.reconnectNow();
      case "wake":
        return client.wake();
      default:
        throw new TypeError(`unknown request "${op satisfies never}"`);
    }
  }

  private forward(event: string, args: unknown[]): void {
    const ticket = ticketIn(event, args[0]);
    if (ticket) this.shareTicket(ticket);
    // Tabs get the ticket as a `ticket` message (for the next leader), never as an event.
    if (event === ServerEvent.Ticket) return;
    if (event === ServerEvent.Welcome) {
      const { ticket: _ticket, ticketExpiresAt: _expiresAt, ...welcome } = args[0] as WelcomePayload;
      this.welcome = welcome;
      this.sendEvent(event, [welcome]);
      return;
    }
    const room = roomOf(args[0]);
    if (room !== undefined && event === ServerEvent.RoomRevoked)
      for (const entry of this.tabs.values()) entry.rooms.delete(room);
    // A room tabs joined at run time: only the tabs in it. Anything else: every tab.
    if (room !== undefined && this.runtimeRooms.has(room)) {
      const to = [...this.tabs].filter(([, entry]) => entry.rooms.has(room)).map(([tab]) => tab);
      if (to.length > 0) this.sendEvent(event, args, to);
    } else this.sendEvent(event, args);
    // Report the figures once the connection has counted the recovery, whichever listener runs first.
    if (event === ServerEvent.Recovery) queueMicrotask(() => this.sendStatus());
  }

  private shareTicket(ticket: TicketPayload): void {
    this.ticket = ticket;
    this.send({ kind: "ticket", hub: this.id, ticket });
  }

  private onState(state: TetherState): void {
    const stopped = (state === "closed" || state === "unauthenticated") && !this.idling;
    if (stopped) for (const entry of this.tabs.values()) entry.wants = false;
    this.sendStatus(stopped);
  }

  /**
   * To `to`, else to every tab attached so far: a tab whose attach is still on its way
   * must not take a live event, or the replay from its older offset would look like duplicates.
   */
  private sendEvent(event: string, args: unknown[], to: TabId[] = [...this.tabs.keys()]): void {
    this.send({ kind: "event", hub: this.id, to, event, args });
  }

  private sendStatus(stopped = false): void {
    const { mode: _mode, tabs: _tabs, ...stats } = this.client.stats();
    this.send({ kind: "status", hub: this.id, state: this.client.state, stopped, stats, tabs: this.tabs.size });
  }

  private send(message: HubMessage): void {
    this.transport.send(message);
  }
}
