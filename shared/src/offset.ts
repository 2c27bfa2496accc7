/**
 * Event offsets. To the protocol an offset is opaque: clients echo back the last
 * one they saw. Inside, it is the Redis Stream id of the event (`<ms>-<seq>`)
 * and the stream's epoch, `<ms>-<seq>:<epoch>`. The epoch changes when the
 * store lost or rolled back the stream, so an offset from before cannot pass
 * for a position in the new one. An offset without an epoch (`0-0` before a
 * stream's first event, or one from a server before epochs) is still accepted.
 */

/** An opaque position in an event stream; clients echo it back unchanged. */
export type Offset = string;

/** A parsed offset. `epoch` is "" when the offset carries none. */
export interface StreamPosition {
  id: string;
  epoch: string;
}

/** The position before anything was published to a stream. */
export const ZERO_ID = "0-0";

const OFFSET = /^(\d{1,15})-(\d{1,15})(?::([0-9a-z]{1,16}))?$/;

/** Matches every offset a server hands out (used by the handshake schema). */
export const OFFSET_PATTERN = OFFSET;

/** The offset of stream id `id` in epoch `epoch` ("" for none). */
export function formatOffset(id: string, epoch: string): Offset {
  return epoch === "" ? id : `${id}:${epoch}`;
}

/** Parses an offset; undefined when it is not one. */
export function parseOffset(offset: string): StreamPosition | undefined {
  const match = OFFSET.exec(offset);
  if (!match) return undefined;
  return { id: `${match[1]}-${match[2]}`, epoch: match[3] ?? "" };
}

/** Negative, zero or positive as stream id `a` is before, equal to or after `b`. */
export function compareIds(a: string, b: string): number {
  // No arrays: ids are compared on every recovery check and every held event.
  const aDash = a.indexOf("-");
  const bDash = b.indexOf("-");
  const am = millisOf(a, aDash);
  const bm = millisOf(b, bDash);
  return am === bm ? sequenceOf(a, aDash) - sequenceOf(b, bDash) : am - bm;
}

const millisOf = (id: string, dash: number) => Number(dash < 0 ? id : id.slice(0, dash));
const sequenceOf = (id: string, dash: number) => (dash < 0 ? 0 : Number(id.slice(dash + 1)));

/**
 * True when `candidate` comes after `current` in one stream: a later id in the
 * same epoch, or anything from another epoch (the newest epoch wins), or when
 * there is no current offset.
 */
export function isAfter(candidate: Offset, current: Offset | undefined): boolean {
  if (current === undefined) return true;
  const a = parseOffset(current);
  const b = parseOffset(candidate);
  if (!a || !b) return candidate !== current;
  if (a.epoch !== b.epoch && a.id !== ZERO_ID) return true;
  return compareIds(b.id, a.id) > 0;
}
