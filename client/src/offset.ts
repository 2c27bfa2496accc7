import type { Offset } from "@tether/shared";

const STREAM_ID = /^(\d{1,15})-(\d{1,15})$/;

/**
 * The later of two offsets. Offsets are opaque to the protocol, but today they are
 * Redis Stream ids (`<ms>-<seq>`), which are compared numerically; anything else
 * counts as "latest seen wins".
 */
export function newerOffset(current: Offset | undefined, candidate: Offset): Offset {
  if (current === undefined) return candidate;
  const a = STREAM_ID.exec(current);
  const b = STREAM_ID.exec(candidate);
  if (!a || !b) return candidate;
  const [msA, seqA] = [Number(a[1]), Number(a[2])];
  const [msB, seqB] = [Number(b[1]), Number(b[2])];
  return msB > msA || (msB === msA && seqB > seqA) ? candidate : current;
}

/** The `offset` of an event payload, if it has one. */
export function offsetOf(payload: unknown): Offset | undefined {
  if (typeof payload !== "object" || payload === null) return undefined;
  const offset = (payload as { offset?: unknown }).offset;
  return typeof offset === "string" && offset !== "" ? offset : undefined;
}

/** True when `candidate` comes after `current` (always, when there is no current or they are not stream ids). */
export function isAfter(candidate: Offset, current: Offset | undefined): boolean {
  return current === undefined || (candidate !== current && newerOffset(current, candidate) === candidate);
}

/** The room of a room-stream event payload; undefined for the user's own stream. */
export function roomOf(payload: unknown): string | undefined {
  if (typeof payload !== "object" || payload === null) return undefined;
  const room = (payload as { room?: unknown }).room;
  return typeof room === "string" ? room : undefined;
}
