import { compareIds, isStreamId } from "../store/stream-id.js";
import type { StreamRead } from "../store/types.js";

/** Where a socket's delivery of one stream starts. */
export type StreamStart =
  /** The client sent the last offset it saw. */
  | { kind: "resume"; offset: string }
  /** First connect: the stream's newest id, read before the socket joined its room. */
  | { kind: "fresh"; head: string }
  /** The client sent something that is not an offset. */
  | { kind: "unusable"; head: string };

/** The first id to read after, whatever the start. */
export const readFrom = (start: StreamStart) => (start.kind === "resume" ? start.offset : start.head);

export function startFrom(requested: unknown, head: () => Promise<string>): Promise<StreamStart> | StreamStart {
  if (requested === undefined) return head().then((id) => ({ kind: "fresh", head: id }));
  if (typeof requested === "string" && isStreamId(requested)) return { kind: "resume", offset: requested };
  return head().then((id) => ({ kind: "unusable", head: id }));
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
 * Decides whether a stream can be recovered from the client's offset: not when
 * the offset is in the future (not from this stream), and not when anything
 * after it was already trimmed (older than the window, or past the length cap).
 */
export function planRecovery(start: StreamStart, read: StreamRead): RecoveryPlan {
  if (start.kind === "fresh") {
    return { replayAfter: start.head, report: undefined, threshold: start.head, welcomeOffset: start.head };
  }
  const lost = { replayAfter: undefined, threshold: read.last, welcomeOffset: read.last };
  if (start.kind === "unusable" || compareIds(start.offset, read.last) > 0) {
    return { ...lost, report: { recovered: false, missed: 0 } };
  }
  if (compareIds(read.maxDeleted, start.offset) > 0) {
    return { ...lost, report: { recovered: false, missed: Math.max(1, read.length) } };
  }
  return { replayAfter: start.offset, report: { recovered: true }, threshold: start.offset, welcomeOffset: read.last };
}
