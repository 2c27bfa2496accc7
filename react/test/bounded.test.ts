import { describe, expect, it } from "vitest";
import { appendBounded, DEFAULT_KEEP_EVENTS, keepOf, MAX_KEEP_EVENTS } from "../src/bounded.js";

describe("useSubscription's bound on the events it keeps", () => {
  it("clamps `keep` to [0, MAX_KEEP_EVENTS], the default for a missing or non-finite one (hostile values)", () => {
    expect(keepOf(undefined)).toBe(DEFAULT_KEEP_EVENTS);
    expect(keepOf(Number.NaN)).toBe(DEFAULT_KEEP_EVENTS);
    expect(keepOf(Number.POSITIVE_INFINITY)).toBe(DEFAULT_KEEP_EVENTS);
    expect(keepOf(1e12)).toBe(MAX_KEEP_EVENTS);
    expect(keepOf(-5)).toBe(0);
    expect(keepOf(2.9)).toBe(2);
  });

  it("at the bound, each new event drops the oldest; under it, nothing is dropped", () => {
    let list: number[] = [];
    for (let n = 1; n <= MAX_KEEP_EVENTS; n += 1) list = appendBounded(list, n, MAX_KEEP_EVENTS);
    expect(list).toHaveLength(MAX_KEEP_EVENTS);
    expect(list[0]).toBe(1);
    list = appendBounded(list, MAX_KEEP_EVENTS + 1, MAX_KEEP_EVENTS);
    expect(list).toHaveLength(MAX_KEEP_EVENTS);
    expect([list[0], list.at(-1)]).toEqual([2, MAX_KEEP_EVENTS + 1]);
    expect(appendBounded([1, 2, 3], 4, 3)).toEqual([2, 3, 4]);
    expect(appendBounded([1], 2, 1)).toEqual([2]);
    expect(appendBounded([1, 2], 3, 0)).toEqual([]);
  });
});
