/** The latest events `useSubscription` keeps by default. */
export const DEFAULT_KEEP_EVENTS = 50;
/** The most events `useSubscription` keeps, whatever `keep` asks: a page open for hours never grows without bound. */
export const MAX_KEEP_EVENTS = 1_000;

/** `keep` as asked, clamped to [0, MAX_KEEP_EVENTS]; the default for a missing or non-finite one. */
export function keepOf(keep: number | undefined): number {
  if (keep === undefined || !Number.isFinite(keep)) return DEFAULT_KEEP_EVENTS;
  return Math.max(0, Math.min(MAX_KEEP_EVENTS, Math.floor(keep)));
}

/** `list` with `item` appended, its oldest entries dropped to stay within `keep` (a new array). */
export function appendBounded<T>(list: readonly T[], item: T, keep: number): T[] {
  if (keep <= 0) return [];
  return [...list.slice(Math.max(0, list.length - keep + 1)), item];
}
