import { describe, expect, it } from "vitest";
import { Backoff, backoffDelay } from "../src/backoff.js";

const base = { baseMs: 500, maxMs: 30_000 };

/** A deterministic uniform sequence in [0, 1). */
function sequence(): () => number {
  let i = 0;
  return () => (((i++ * 0.618_033_988_75) % 1) + 1) % 1;
}

describe("backoffDelay", () => {
  it("grows exponentially from the base", () => {
    const max = () => 0.999_999; // jitter factor ≈ 1
    expect(backoffDelay(0, { ...base, random: max })).toBe(500);
    expect(backoffDelay(1, { ...base, random: max })).toBe(1000);
    expect(backoffDelay(2, { ...base, random: max })).toBe(2000);
    expect(backoffDelay(5, { ...base, random: max })).toBe(16_000);
  });

  it("stays within [half, full] of the capped exponential", () => {
    const random = sequence();
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(30_000, 500 * 2 ** attempt);
      for (let i = 0; i < 50; i++) {
        const delay = backoffDelay(attempt, { ...base, random });
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it("keeps delays spread at the cap instead of all equal to it", () => {
    const random = sequence();
    const delays = Array.from({ length: 100 }, (_, i) => backoffDelay(20 + i, { ...base, random }));
    expect(new Set(delays).size).toBeGreaterThan(50);
    expect(delays.every((d) => d === 30_000)).toBe(false);
    expect(Math.min(...delays)).toBeLessThan(20_000);
    expect(Math.max(...delays)).toBeLessThanOrEqual(30_000);
  });

  it("does not overflow for huge attempt counts", () => {
    expect(backoffDelay(10_000, { ...base, random: () => 0 })).toBe(15_000);
  });

  it("clamps a misbehaving random source", () => {
    expect(backoffDelay(0, { ...base, random: () => -1 })).toBe(250);
    expect(backoffDelay(0, { ...base, random: () => 7 })).toBe(500);
    expect(backoffDelay(0, { ...base, random: () => Number.NaN })).toBe(250);
  });
});

describe("Backoff", () => {
  it("counts attempts and grows", () => {
    const backoff = new Backoff({ ...base, random: () => 0.999_999 });
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([500, 1000, 2000]);
    expect(backoff.attempts).toBe(3);
  });

  it("starts again from the base after a reset", () => {
    const backoff = new Backoff({ ...base, random: () => 0.999_999 });
    for (let i = 0; i < 10; i++) backoff.next();
    expect(backoff.next()).toBe(30_000);
    backoff.reset();
    expect(backoff.attempts).toBe(0);
    expect(backoff.next()).toBe(500);
  });
});
