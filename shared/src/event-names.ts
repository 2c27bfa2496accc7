import { ClientEvent, ServerEvent } from "./events.js";

/** Socket.IO's reserved names: emitting one throws inside the server's delivery, and a listener of `newListener` or `error` is not an app's. */
export const SOCKET_IO_EVENT_NAMES = [
  "connect",
  "connect_error",
  "connection",
  "disconnect",
  "disconnecting",
  "error",
  "newListener",
  "removeListener",
] as const;

/**
 * The client SDK's own events, on the client (`state`, `error`) and on a room's subscription
 * (`subscribed`, `ended`, and those two): a room event of that name would drive its listeners.
 */
export const SDK_EVENT_NAMES = ["state", "error", "subscribed", "ended"] as const;

/**
 * Event names no publisher may use: Socket.IO's reserved names, every name of Tether's own
 * protocol (server → client, `ServerEvent`, and client → server, `ClientEvent`: a published
 * `room:join` or `history` is no app's), and the client SDK's own events, which a forged one
 * would drive. Built from those lists, so a protocol event added there is reserved here.
 */
export const RESERVED_EVENT_NAMES = [
  ...SOCKET_IO_EVENT_NAMES,
  ...SDK_EVENT_NAMES,
  ...(Object.values(ServerEvent) as (typeof ServerEvent)[keyof typeof ServerEvent][]),
  ...(Object.values(ClientEvent) as (typeof ClientEvent)[keyof typeof ClientEvent][]),
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
