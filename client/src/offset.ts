import type { Offset } from "@tether/shared";

export { isAfter } from "@tether/shared";

/** The `offset` of an event payload, if it has one. */
export function offsetOf(payload: unknown): Offset | undefined {
  if (typeof payload !== "object" || payload === null) return undefined;
  const offset = (payload as { offset?: unknown }).offset;
  return typeof offset === "string" && offset !== "" ? offset : undefined;
}

/** The room of a room-stream event payload; undefined for the user's own stream. */
export function roomOf(payload: unknown): string | undefined {
  if (typeof payload !== "object" || payload === null) return undefined;
  const room = (payload as { room?: unknown }).room;
  return typeof room === "string" ? room : undefined;
}
