import { ServerEvent } from "./events.js";

/**
 * Event names no publisher may use: Socket.IO's reserved names (emitting one
 * throws inside the server's delivery, and a listener of `newListener` or
 * `error` is not an app's), Tether's own protocol events, and the client SDK's
 * own events (`state`, `error`), which a forged one would drive.
 */
export const RESERVED_EVENT_NAMES = [
  "connect",
  "connect_error",
  "connection",
  "disconnect",
  "disconnecting",
  "error",
  "newListener",
  "removeListener",
  "state",
  ServerEvent.Welcome,
  ServerEvent.Recovery,
  ServerEvent.SessionEnded,
  ServerEvent.Ticket,
  ServerEvent.PresenceJoin,
  ServerEvent.PresenceLeave,
  ServerEvent.RoomRevoked,
] as const;

export type ReservedEventName = (typeof RESERVED_EVENT_NAMES)[number];

/** Longest event name a publisher may use. */
export const MAX_EVENT_NAME_LENGTH = 128;

const RESERVED: ReadonlySet<string> = new Set(RESERVED_EVENT_NAMES);

/** True for a name only Socket.IO or Tether itself may emit. */
export function isReservedEventName(name: string): boolean {
  return RESERVED.has(name);
}

/**
 * The one rule for published event names, applied at every publish entry
 * (HTTP, in-process, worker): a non-empty string of at most
 * MAX_EVENT_NAME_LENGTH characters that is not reserved.
 *
 * @example
 * isPublishableEventName("build:log"); // true
 * isPublishableEventName("newListener"); // false
 */
export function isPublishableEventName(name: unknown): name is string {
  return (
    typeof name === "string" && name.length > 0 && name.length <= MAX_EVENT_NAME_LENGTH && !isReservedEventName(name)
  );
}
