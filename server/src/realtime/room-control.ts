import { RoomNameSchema } from "@tether/shared";

/**
 * A host's instruction about rooms, carried to every instance on the control
 * channel: take a user's or a session's sockets out of a room, or check the
 * connected sockets' rooms again (`canJoin`, and `roomsOf` for the rooms it granted).
 */
export type RoomControl =
  | { op: "remove"; room: string; userId: string }
  /** `session`: the session's room tag (`sessionRoom(sid)`), never the session id. */
  | { op: "remove"; room: string; session: string }
  | { op: "recheck"; room?: string };

/**
 * The message on the control channel. Its own top-level key: a session-end
 * message is `{ room, reason }`, and an instance must never take one for the other.
 */
export interface RoomControlMessage {
  roomControl: RoomControl;
  /** The instance that sent it (it applied the instruction itself already). */
  from: string;
}

const isRoom = (value: unknown): value is string => RoomNameSchema.safeParse(value).success;
const isText = (value: unknown): value is string => typeof value === "string" && value !== "" && value.length <= 512;

/** The room control message in a control-channel message, validated; undefined when it is none. */
export function parseRoomControl(message: unknown): RoomControlMessage | undefined {
  if (typeof message !== "object" || message === null) return undefined;
  const { roomControl: c, from } = message as { roomControl?: unknown; from?: unknown };
  if (typeof c !== "object" || c === null || typeof from !== "string") return undefined;
  const control = c as Record<string, unknown>;
  if (control.op === "recheck") {
    if (control.room === undefined) return { roomControl: { op: "recheck" }, from };
    return isRoom(control.room) ? { roomControl: { op: "recheck", room: control.room }, from } : undefined;
  }
  if (control.op !== "remove" || !isRoom(control.room)) return undefined;
  if (isText(control.userId))
    return { roomControl: { op: "remove", room: control.room, userId: control.userId }, from };
  if (isText(control.session))
    return { roomControl: { op: "remove", room: control.room, session: control.session }, from };
  return undefined;
}
