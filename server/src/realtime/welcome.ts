import type { RecoveryPayload, WelcomePayload } from "@tether/shared";
import type { StartOffsets } from "./cursor.js";
import { roomOf } from "./streams.js";

/** The resume ticket fields of a `welcome` (none when tickets are off). */
export type WelcomeTicket = Pick<WelcomePayload, "ticket" | "ticketExpiresAt">;

/**
 * A socket's `welcome`: the instance, where its user stream starts (`offset`)
 * and each room stream (`rooms`, only when it has some), its first resume ticket,
 * and the resumed streams' recoveries when they ride in it (`recovery`, only when some do).
 */
export function welcomePayload(
  instance: string,
  offsets: StartOffsets,
  ticket: WelcomeTicket,
  recoveries: RecoveryPayload[] = [],
): WelcomePayload {
  // Built property by property: on Node 20, a spread followed by more properties (`{ ...ticket, instance }`)
  // takes V8's slow path, microseconds per handshake (see BENCHMARKS.md, "Where a reconnect's time goes").
  const welcome: WelcomePayload = { instance, offset: "0-0" };
  if (ticket.ticket !== undefined) {
    welcome.ticket = ticket.ticket;
    welcome.ticketExpiresAt = ticket.ticketExpiresAt;
  }
  let rooms: Record<string, string> | undefined;
  for (const [stream, offset] of offsets) {
    const room = roomOf(stream);
    if (room === undefined) welcome.offset = offset;
    else {
      rooms ??= {};
      rooms[room] = offset;
    }
  }
  if (rooms !== undefined) welcome.rooms = rooms;
  if (recoveries.length > 0) welcome.recovery = recoveries;
  return welcome;
}
