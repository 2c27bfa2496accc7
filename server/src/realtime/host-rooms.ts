import { ErrorCode, type RoomMember, RoomNameSchema } from "@tether/shared";
import type { Logger } from "pino";
import { hostSessionId, sessionRoom } from "../auth/keys.js";
import { TetherError } from "../errors.js";
import type { Backend } from "../store/types.js";
import type { RoomControl, RoomControlMessage } from "./room-control.js";
import type { Realtime } from "./server.js";

/** What the host's room calls work with; `realtime` is undefined until `attach`. */
export interface HostRoomsDeps {
  backend: Backend;
  logger: Logger;
  realtime(): Realtime | undefined;
}

/** The host's room calls (`tether.members`, `removeFromRoom`, `recheckRooms`), on every instance. */
export function hostRooms(deps: HostRoomsDeps) {
  const { backend, logger } = deps;

  /** A room instruction to every instance; before `attach`, to the others only (this one has no sockets). */
  async function sendRoomControl(control: RoomControl): Promise<void> {
    try {
      const realtime = deps.realtime();
      if (realtime) await realtime.roomControl(control);
      else await backend.control.publish({ roomControl: control, from: "" } satisfies RoomControlMessage);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, "room control not sent");
      throw new TetherError(ErrorCode.Unavailable, "Could not reach every instance; try again.");
    }
  }

  return {
    async members(room: string, { limit }: { limit?: number } = {}): Promise<RoomMember[]> {
      // A read: it writes nothing (expired entries are left out; the heartbeat removes them).
      const realtime = deps.realtime();
      const read = await (realtime ? realtime.rooms.members(room, limit) : backend.presence.members(room, limit));
      return read.members;
    },
    async removeFromRoom(room: string, who: { userId: string } | { sessionKey: string }): Promise<void> {
      if (!RoomNameSchema.safeParse(room).success) throw new TetherError(ErrorCode.InvalidInput, "Not a room name.");
      const control: RoomControl =
        "userId" in who
          ? { op: "remove", room, userId: who.userId }
          : { op: "remove", room, session: sessionRoom(hostSessionId(who.sessionKey)) };
      await sendRoomControl(control);
    },
    async recheckRooms(room?: string): Promise<void> {
      if (room !== undefined && !RoomNameSchema.safeParse(room).success)
        throw new TetherError(ErrorCode.InvalidInput, "Not a room name.");
      await sendRoomControl(room === undefined ? { op: "recheck" } : { op: "recheck", room });
    },
  };
}
