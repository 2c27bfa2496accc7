import { presenceRoom } from "./room-presence.js";
import type { TetherServer } from "./types.js";

/**
 * Where an ephemeral event goes: a room's sockets (optionally all but one socket: the
 * sender's, `EventContext.socketId`), or every connected socket of the fleet.
 */
export type BroadcastTarget = { room: string; except?: string } | { everyone: true };

/** Sends an ephemeral event now, on every instance; best effort (see `PublishOptions.ephemeral`). */
export type EphemeralSink = (target: BroadcastTarget, event: string, data: object) => void;

/**
 * Ephemeral events through the Socket.IO adapter: a room's through its presence room
 * (every socket in the room joined it), with `room` added as stored events have it;
 * everyone's to the whole namespace. No stream, no offset, nothing replayed.
 */
export function ephemeralSink(io: TetherServer): EphemeralSink {
  return (target, event, data) => {
    // The event map types Tether's own events; an app's are any publishable name.
    const emitter = io as unknown as {
      emit(event: string, payload: object): void;
      to(room: string): { except(id: string): { emit(event: string, payload: object): void } } & {
        emit(event: string, payload: object): void;
      };
    };
    if ("everyone" in target) return void emitter.emit(event, data);
    const to = emitter.to(presenceRoom(target.room));
    const payload = { ...data, room: target.room };
    if (target.except === undefined) to.emit(event, payload);
    else to.except(target.except).emit(event, payload);
  };
}
