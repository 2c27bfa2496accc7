import { compareIds, isStreamId } from "../store/stream-id.js";
import type { StreamRead } from "../store/types.js";

/** Where a socket's delivery of one stream starts. */
export type StreamStart =
  /** The client sent the last offset it saw. */
  | { kind: "resume"; offset: string }
  /** First connect: deliver what is published from now on. */
  | { kind: "fresh" }
  /** The client sent something that is not an offset: start from now, and say recovery failed. */
  | { kind: "unusable" };

/** Classifies the offset a client sent for a stream (unknown input). */
export function startFrom(requested: unknown): StreamStart {
  if (requested === undefined) return { kind: "fresh" };
  if (typeof requested === "string" && isStreamId(requested)) return { kind: "resume", offset: requested };
  return { kind: "unusable" };
}

/** The decision after the first read of a stream. */
export interface RecoveryPlan {
  /** Replay entries after this id (none when not recovered). */
  replayAfter: string | undefined;
  /** The `recovery` event to send (none on a first connect). */
  report: { recovered: boolean; missed?: number } | undefined;
  /** Deliver only live events after this id (and after what was replayed). */
  threshold: string;
  /** The offset `welcome` announces: where a client without a usable offset now stands. */
  welcomeOffset: string;
}

/**
 * Without a usable offset: start at the stream's newest id, read after the
 * socket joined its room (so whatever comes later reaches it live).
 */
export function planFromHead(start: { kind: "fresh" | "unusable" }, head: string): RecoveryPlan {
  const report = start.kind === "unusable" ? { recovered: false, missed: 0 } : undefined;
  return { replayAfter: undefined, report, threshold: head, welcomeOffset: head };
}

/**
 * Decides whether a stream can be recovered from the client's offset: not when
 * the offset is in the future (not from this stream), and not when anything
 * after it was already trimmed (older than the window, or past the length cap).
 */
export function planRecovery(start: { kind: "resume"; offset: string }, read: StreamRead): RecoveryPlan {
  const lost = { replayAfter: undefined, threshold: read.last, welcomeOffset: read.last };
  if (compareIds(start.offset, read.last) > 0) {
    return { ...lost, report: { recovered: false, missed: 0 } };
  }
  if (compareIds(read.maxDeleted, start.offset) > 0) {
    return { ...lost, report: { recovered: false, missed: Math.max(1, read.length) } };
  }
  return { replayAfter: start.offset, report: { recovered: true }, threshold: start.offset, welcomeOffset: read.last };
}
