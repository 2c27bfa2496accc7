/** Redis Stream ids (`<ms>-<seq>`): parsing and ordering. */

export const ZERO_ID = "0-0";

const ID = /^(\d{1,15})-(\d{1,15})$/;

export function isStreamId(text: string): boolean {
  return ID.test(text);
}

/** Negative, zero or positive as `a` is before, equal to or after `b`. */
export function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return am === bm ? as - bs : am - bm;
}
