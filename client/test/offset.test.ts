import { describe, expect, it } from "vitest";
import { isAfter, offsetOf } from "../src/offset.js";

describe("isAfter", () => {
  it("is true without a current offset", () => {
    expect(isAfter("5-0:a1", undefined)).toBe(true);
  });

  it("compares ids of one epoch numerically, not as text", () => {
    expect(isAfter("10-0:a1", "9-0:a1")).toBe(true);
    expect(isAfter("9-0:a1", "10-0:a1")).toBe(false);
    expect(isAfter("10-10:a1", "10-2:a1")).toBe(true);
    expect(isAfter("10-2:a1", "10-10:a1")).toBe(false);
    expect(isAfter("10-2:a1", "10-2:a1")).toBe(false);
  });

  it("takes an offset of a new epoch as newer, and anything after the zero offset", () => {
    expect(isAfter("3-0:b2", "10-0:a1")).toBe(true);
    expect(isAfter("3-0:b2", "0-0")).toBe(true);
  });

  it("treats what is not an offset as newer unless it is the same text", () => {
    expect(isAfter("0-1", "abc")).toBe(true);
    expect(isAfter("xyz", "5-0")).toBe(true);
    expect(isAfter("xyz", "xyz")).toBe(false);
  });
});

describe("offsetOf", () => {
  it("reads a non-empty string offset from a payload", () => {
    expect(offsetOf({ jobId: "j", offset: "1-2" })).toBe("1-2");
    expect(offsetOf({ offset: "" })).toBeUndefined();
    expect(offsetOf({ offset: 3 })).toBeUndefined();
    expect(offsetOf("1-2")).toBeUndefined();
    expect(offsetOf(null)).toBeUndefined();
  });
});
