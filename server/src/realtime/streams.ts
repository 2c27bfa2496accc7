/**
 * Stream names double as Socket.IO room names: the stream `user:<id>` is
 * delivered to the room `user:<id>`, the stream `room:<name>` to `room:<name>`.
 */
export const userStream = (userId: string) => `user:${userId}`;
export const roomStream = (room: string) => `room:${room}`;

/** The app room name of a room stream, or undefined for a user stream. */
export function roomOf(stream: string): string | undefined {
  return stream.startsWith("room:") ? stream.slice("room:".length) : undefined;
}
