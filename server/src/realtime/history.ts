import { ErrorCode, formatOffset, type HistoryOptions, type HistoryPage, parseOffset, ZERO_ID } from "@tether/shared";
import { TetherError } from "../errors.js";
import type { HistoryStore } from "../store/types.js";
import type { Target } from "./publisher.js";
import { REALTIME_DEFAULTS } from "./settings.js";
import { roomStream, userStream } from "./streams.js";

export type { HistoryOptions, HistoryPage };

/** The bounds of one read: events, and bytes of event names and data (`TETHER_REPLAY_BUFFER`). */
export interface HistoryBounds {
  maxLimit: number;
  maxBytes: number;
}

/** The stream of a target (a user's, or a room's); INVALID_INPUT unless it names one, 1 to 256 characters. */
export function streamOf(target: Target): string {
  const name = (target as { user?: unknown }).user ?? (target as { room?: unknown }).room;
  if (typeof name !== "string" || name.length < 1 || name.length > 256)
    throw new TetherError(ErrorCode.InvalidInput, "A target is { user } or { room }, a name of 1 to 256 characters.");
  return "user" in target ? userStream(name) : roomStream(name);
}

/**
 * Reads a page of a stream's history, back from its newest event or from `before`. Throws
 * INVALID_INPUT for a limit that is not an integer from 1 to `bounds.maxLimit`, for a `before`
 * that is not an offset, or one from another epoch of the stream (its history was reset since:
 * start again from the newest). Entries the window or the length cap dropped are not returned;
 * a page holds at most `bounds.maxBytes` of event names and data (one event at least).
 */
export async function readHistory(
  store: HistoryStore,
  stream: string,
  options: HistoryOptions,
  bounds: HistoryBounds,
): Promise<HistoryPage> {
  const limit = options.limit ?? Math.min(REALTIME_DEFAULTS.historyLimit, bounds.maxLimit);
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > bounds.maxLimit)
    throw new TetherError(ErrorCode.InvalidInput, `A history limit is an integer from 1 to ${bounds.maxLimit}.`);
  const before = options.before === undefined ? undefined : parseOffset(String(options.before));
  if (options.before !== undefined && (typeof options.before !== "string" || before === undefined))
    throw new TetherError(ErrorCode.InvalidInput, "`before` is not an offset.");
  const page = await store.readBefore(stream, before?.id, limit, bounds.maxBytes);
  if (before && before.epoch !== "" && before.id !== ZERO_ID && before.epoch !== page.epoch)
    throw new TetherError(
      ErrorCode.InvalidInput,
      "`before` is from an earlier history of this stream; read from the newest.",
    );
  const events = page.entries.map((entry) => ({
    offset: formatOffset(entry.id, page.epoch),
    event: entry.event,
    data: JSON.parse(entry.data) as unknown,
  }));
  return { events, offset: formatOffset(page.last, page.epoch), more: page.more };
}
