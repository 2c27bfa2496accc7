import {
  compareIds,
  formatOffset,
  parseOffset,
  type RecoveryFailure,
  type StreamPosition,
  ZERO_ID,
} from "@tether/shared";
import type { StreamHead, StreamRead } from "../store/types.js";

/** Where a socket's delivery of one stream starts. */
export type StreamStart =
  /** The client sent the last offset it saw. */
  | { kind: "resume"; from: StreamPosition }
  /** First connect: deliver what is published from now on. */
  | { kind: "fresh" }
  /** The client sent something that is not an offset: start from now, and say recovery failed. */
  | { kind: "unusable" };

/** Classifies the offset a client sent for a stream (unknown input). */
export function startFrom(requested: unknown): StreamStart {
  if (requested === undefined) return { kind: "fresh" };
  const from = typeof requested === "string" ? parseOffset(requested) : undefined;
  return from ? { kind: "resume", from } : { kind: "unusable" };
}

/** Why a stream cannot be recovered from a position (undefined when it can). */
export type Unrecoverable = { missed: number; reason: RecoveryFailure };

/**
 * Whether everything after `from` can still be read: not when the position is
 * from another epoch (the store lost or rolled the stream back since: `reset`),
 * not when anything after it was already removed (older than the window, past
 * the length cap, expired: `trimmed`), and not when it is in the future. A
 * future position with an epoch is, unless forged, one the store handed out and
 * no longer has (`reset`); one without an epoch is not a position of this
 * stream (`invalid`).
 */
export function unrecoverable(from: StreamPosition, read: StreamRead): Unrecoverable | undefined {
  // Past the stream's newest id: nothing known to be missed.
  if (compareIds(from.id, read.last) > 0) return { missed: 0, reason: from.epoch === "" ? "invalid" : "reset" };
  const sameEpoch = from.epoch === read.epoch || from.id === ZERO_ID;
  if (!sameEpoch) return { missed: Math.max(1, read.length), reason: "reset" };
  if (compareIds(read.maxDeleted, from.id) > 0) return { missed: Math.max(1, read.length), reason: "trimmed" };
  return undefined;
}

/** The head as a position. */
export const positionOf = (head: StreamHead): StreamPosition => ({ id: head.last, epoch: head.epoch });

/** The offset a client is handed for a position. */
export const offsetOf = (position: StreamPosition): string => formatOffset(position.id, position.epoch);
