import type { WelcomePayload } from "@tether/shared";
import type { StartOffsets } from "./cursor.js";
import { roomOf } from "./streams.js";

/** The resume ticket fields of a `welcome` (none when tickets are off). */
export type WelcomeTicket = Pick<WelcomePayload, "ticket" | "ticketExpiresAt">;

/**
 * A socket's `welcome`: the instance, where its user stream starts (`offset`)
 * and each room stream (`rooms`, only when it has some), and its first resume ticket.
 */
export function welcomePayload(instance: string, offsets: StartOffsets, ticket: WelcomeTicket): WelcomePayload {
  const welcome: WelcomePayload = { ...ticket, instance, offset: "0-0" };
  const rooms: Record<string, string> = {};
  for (const [stream, offset] of offsets) {
    const room = roomOf(stream);
    if (room === undefined) welcome.offset = offset;
    else rooms[room] = offset;
  }
  return Object.keys(rooms).length > 0 ? { ...welcome, rooms } : welcome;
}
