import { ErrorCode, MAX_SOCKET_MESSAGE_BYTES, type PresenceData } from "@tether/shared";
import { TetherClientError } from "./errors.js";

/** Room name, event name and packet framing of a message beside its presence data, at most (a room name is ≤ 256). */
const PRESENCE_MESSAGE_MARGIN = 1024;

/**
 * Presence data that could not fit in one Socket.IO message (MAX_SOCKET_MESSAGE_BYTES) is
 * refused here, INVALID_INPUT, before it is sent: the server would close the connection, and a
 * subscription that kept it would send it again after every reconnect. (The server's own bound,
 * `TETHER_MAX_PRESENCE_BYTES`, 1 KB by default, is checked there.)
 */
export function assertPresenceFits(event: string, data: PresenceData | undefined): void {
  if (data === undefined) return;
  let bytes: number;
  try {
    bytes = new TextEncoder().encode(JSON.stringify(data)).length;
  } catch {
    bytes = Number.POSITIVE_INFINITY; // not JSON (a cycle, a BigInt)
  }
  if (bytes > MAX_SOCKET_MESSAGE_BYTES - PRESENCE_MESSAGE_MARGIN)
    throw new TetherClientError({
      code: ErrorCode.InvalidInput,
      message: `"${event}": presence data must be JSON of at most ${MAX_SOCKET_MESSAGE_BYTES - PRESENCE_MESSAGE_MARGIN} bytes (the server's own bound is smaller)`,
    });
}
