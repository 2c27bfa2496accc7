import { ClientEvent, ErrorCode, type PresenceData } from "@tether/shared";
import { toTetherError } from "../errors.js";
import { MEMBERS_LISTED } from "./room-presence.js";
import { type Rooms, refusal } from "./rooms.js";
import type { BuiltinListeners, TetherSocket } from "./types.js";

/** Acknowledges when the client asked for it (the inbound guard made `ack` safe to call with anything). */
function answer(ack: unknown, reply: unknown): void {
  if (typeof ack === "function") ack(reply);
}

/**
 * The client's room events (validated by the inbound guard before they get here),
 * as listeners shared by every socket, called with the socket as `this` by the
 * guard (see `EventGuard`): a connect allocates nothing for them.
 *
 * @example
 * const guard = new EventGuard(limits, handlers, instance, logger, { ...roomEvents(rooms) });
 */
export function roomEvents(rooms: Rooms): BuiltinListeners {
  function onJoin(
    this: TetherSocket,
    { room, offset, presence }: { room: string; offset?: string; presence?: PresenceData },
    ack?: unknown,
  ) {
    void rooms.join(this, room, offset, presence).then(
      (result) => answer(ack, result),
      (err: unknown) => answer(ack, refusal(ErrorCode.Unavailable, toTetherError(err).message)),
    );
  }
  function onLeave(this: TetherSocket, { room }: { room: string }, ack?: unknown) {
    void rooms.leave(this, room).then(
      () => answer(ack, { ok: true }),
      (err: unknown) => answer(ack, refusal(ErrorCode.Unavailable, toTetherError(err).message)),
    );
  }
  function onMembers(this: TetherSocket, { room }: { room: string }, ack?: unknown) {
    if (typeof ack !== "function") return;
    if (!rooms.isIn(this, room)) {
      ack(refusal(ErrorCode.Forbidden, "Not in this room."));
      return;
    }
    rooms.members(room, MEMBERS_LISTED).then(
      ({ members, total }) => ack({ ok: true, members, membersTotal: total }),
      (err: unknown) => ack(refusal(ErrorCode.Unavailable, toTetherError(err).message)),
    );
  }
  function onPresenceSet(this: TetherSocket, { room, data }: { room: string; data: PresenceData }, ack?: unknown) {
    void rooms.setPresence(this, room, data).then((result) => answer(ack, result));
  }
  return {
    [ClientEvent.PresenceSet]: onPresenceSet,
    [ClientEvent.RoomJoin]: onJoin,
    [ClientEvent.RoomLeave]: onLeave,
    [ClientEvent.RoomMembers]: onMembers,
  } as BuiltinListeners;
}
