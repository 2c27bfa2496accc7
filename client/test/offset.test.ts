import { describe, expect, it } from "vitest";
import { newerOffset, offsetOf } from "../src/offset.js";

describe("newerOffset", () => {
  it("takes the candidate when there is none yet", () => {
    expect(newerOffset(undefined, "5-0")).toBe("5-0");
  });

  it("compares stream ids numerically, not as strings", () => {
    expect(newerOffset("9-0", "10-0")).toBe("10-0");
    expect(newerOffset("10-0", "9-0")).toBe("10-0");
    expect(newerOffset("10-2", "10-10")).toBe("10-10");
    expect(newerOffset("10-10", "10-2")).toBe("10-10");
  });

  it("treats unparseable offsets as latest-seen-wins", () => {
    expect(newerOffset("abc", "0-1")).toBe("0-1");
    expect(newerOffset("5-0", "xyz")).toBe("xyz");
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
