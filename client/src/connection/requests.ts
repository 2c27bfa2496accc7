import {
  ClientEvent,
  type ClientToServerEvents,
  ErrorCode,
  type EventAck,
  type HistoryRequest,
  isErrorCode,
  type Offset,
  type PresenceData,
  type RoomMember,
} from "@tether/shared";
import { ClientErrorCode, TetherClientError, type TetherErrorCode } from "../errors.js";
import type { Requests } from "../facade.js";
import { assertPresenceFits } from "../presence-fits.js";
import type { AckResult, HistoryPage, RoomJoined, TetherSocket } from "../types.js";

/** Requests over a socket of the client's own: acknowledged emits, each bounded by a timeout. */
export class SocketRequests implements Requests {
  constructor(
    private readonly socket: TetherSocket,
    private readonly ackTimeoutMs: number,
  ) {}

  async emitWithAck(event: string, args: unknown[]): Promise<unknown> {
    const reply = await this.ack(event, args, this.ackTimeoutMs);
    // `echo` answers with its payload; the app's events with an EventAck.
    return Object.hasOwn(BUILT_IN_EMITS, event) ? reply : unwrapAck(event, reply);
  }

  emit(event: string, payload: unknown): void {
    (this.socket.emit as (event: string, ...args: unknown[]) => unknown)(event, payload);
  }

  echo(payload: unknown, timeoutMs: number | undefined): Promise<unknown> {
    return this.ack(ClientEvent.Echo, [payload], timeoutMs ?? this.ackTimeoutMs);
  }

  async join(room: string, offset: Offset | undefined, presence: PresenceData | undefined): Promise<RoomJoined> {
    const request: { room: string; offset?: Offset; presence?: PresenceData } = { room };
    if (offset !== undefined) request.offset = offset;
    if (presence !== undefined) request.presence = presence;
    assertPresenceFits(ClientEvent.RoomJoin, presence);
    const result = (await this.ack(ClientEvent.RoomJoin, [request], this.ackTimeoutMs)) as AckResult<
      typeof ClientEvent.RoomJoin
    >;
    if (result.ok !== true) throw ackError(ClientEvent.RoomJoin, result);
    return { recovery: result.recovery, members: result.members, offset: result.offset };
  }

  async leave(room: string): Promise<void> {
    const result = (await this.ack(ClientEvent.RoomLeave, [{ room }], this.ackTimeoutMs)) as AckResult<
      typeof ClientEvent.RoomLeave
    >;
    if (result.ok !== true) throw ackError(ClientEvent.RoomLeave, result);
  }

  async members(room: string): Promise<RoomMember[]> {
    const result = (await this.ack(ClientEvent.RoomMembers, [{ room }], this.ackTimeoutMs)) as AckResult<
      typeof ClientEvent.RoomMembers
    >;
    if (result.ok !== true) throw ackError(ClientEvent.RoomMembers, result);
    return result.members;
  }

  async history(request: HistoryRequest): Promise<HistoryPage> {
    const result = (await this.ack(ClientEvent.History, [request], this.ackTimeoutMs)) as AckResult<
      typeof ClientEvent.History
    >;
    if (result.ok !== true) throw ackError(ClientEvent.History, result);
    return { events: result.events, offset: result.offset, more: result.more };
  }

  async setPresence(room: string, data: PresenceData): Promise<void> {
    assertPresenceFits(ClientEvent.PresenceSet, data);
    const result = (await this.ack(ClientEvent.PresenceSet, [{ room, data }], this.ackTimeoutMs)) as AckResult<
      typeof ClientEvent.PresenceSet
    >;
    if (result.ok !== true) throw ackError(ClientEvent.PresenceSet, result);
  }

  private async ack(event: string, args: unknown[], timeoutMs: number): Promise<unknown> {
    const timed = this.socket.timeout(timeoutMs);
    const emit = timed.emitWithAck as (event: string, ...args: unknown[]) => Promise<unknown>;
    try {
      return await emit.call(timed, event, ...args);
    } catch (cause) {
      // socket.io-client rejects with "operation has timed out" or "socket has been disconnected".
      const lost = cause instanceof Error && /disconnected/i.test(cause.message);
      throw new TetherClientError({
        code: lost ? ClientErrorCode.Disconnected : ClientErrorCode.Timeout,
        message: lost
          ? `Connection lost before "${event}" was acknowledged`
          : `No acknowledgement of "${event}" within ${timeoutMs} ms`,
        cause,
      });
    }
  }
}

/** Built-in client → server events, whose acknowledgement is not an EventAck. */
const BUILT_IN_EMITS: Readonly<Record<keyof ClientToServerEvents, true>> = {
  echo: true,
  "room:join": true,
  "room:leave": true,
  "room:members": true,
  history: true,
  "presence:set": true,
};

/** An app event's EventAck: its result, or its error code thrown as a TetherClientError. */
function unwrapAck(event: string, reply: unknown): unknown {
  const ack = reply as Partial<EventAck> | null;
  if (ack?.ok === true) return ack.result;
  throw refusal(ack?.ok === false ? ack : undefined, ErrorCode.Internal, `Malformed acknowledgement of "${event}"`);
}

/** A refused room request (`{ ok: false, error }`, or the inbound guard's `{ error }`) as a TetherClientError. */
function ackError(event: string, result: unknown): TetherClientError {
  return refusal(result, ClientErrorCode.BadResponse, `"${event}" was refused`);
}

/** A refusal's `{ error: { code, message } }` as a TetherClientError, with these when either is missing. */
function refusal(reply: unknown, code: TetherErrorCode, message: string): TetherClientError {
  const error = (reply as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return new TetherClientError({
    code: isErrorCode(error?.code) ? error.code : code,
    message: typeof error?.message === "string" ? error.message : message,
  });
}
