import type { HistoryRequest, Offset, PresenceData, RoomMember } from "@tether/shared";
import { ClientErrorCode, TetherClientError } from "../errors.js";
import type { Requests } from "../facade.js";
import type { HistoryPage, RoomJoined } from "../types.js";
import { NO_REPLY, type RequestOp, type TabId, type TabMessage } from "./protocol.js";

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** A tab's requests, run by the hub that holds the shared socket: each answered by a `reply` of the same id. */
export class HubRequests implements Requests {
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly tab: TabId,
    private readonly send: (message: TabMessage) => void,
  ) {}

  emitWithAck(event: string, args: unknown[]): Promise<unknown> {
    return this.request("emitWithAck", [event, ...args]);
  }

  emit(event: string, payload: unknown): void {
    this.fire("emit", [event, payload]);
  }

  echo(payload: unknown, timeoutMs: number | undefined): Promise<unknown> {
    return this.request("echo", [payload, timeoutMs]);
  }

  join(room: string, offset: Offset | undefined, presence: PresenceData | undefined): Promise<RoomJoined> {
    return this.request("join", [room, offset, presence]) as Promise<RoomJoined>;
  }

  history(request: HistoryRequest): Promise<HistoryPage> {
    return this.request("history", [request]) as Promise<HistoryPage>;
  }

  async setPresence(room: string, data: PresenceData): Promise<void> {
    await this.request("setPresence", [room, data]);
  }

  async leave(room: string): Promise<void> {
    await this.request("leave", [room]);
  }

  members(room: string): Promise<RoomMember[]> {
    return this.request("members", [room]) as Promise<RoomMember[]>;
  }

  /** A request whose answer nobody waits for. */
  fire(op: RequestOp, args: unknown[]): void {
    this.send({ kind: "request", tab: this.tab, id: NO_REPLY, op, args });
  }

  /** The hub's answer to request `id`. */
  settle(id: number, value: unknown, error: TetherClientError | undefined): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    if (error) pending.reject(error);
    else pending.resolve(value);
  }

  /** The hub that was to answer is gone, or the tab stopped: nothing in flight will be answered. */
  failAll(): void {
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.reject(
        new TetherClientError({
          code: ClientErrorCode.Disconnected,
          message: "The shared connection changed hands before the request was answered",
        }),
      );
    }
  }

  private request(op: RequestOp, args: unknown[]): Promise<unknown> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.send({ kind: "request", tab: this.tab, id, op, args });
    });
  }
}
