import { describe, expect, it } from "vitest";
import { Cursor, continuity, Gate } from "../src/realtime/cursor.js";
import type { TetherSocket } from "../src/realtime/types.js";
import type { AppendedEvent } from "../src/store/types.js";

const event = (id: string, prev: string, epoch = "e1") => ({ stream: "s", id, prev, epoch }) as AppendedEvent;

// What delivery keeps per socket, and that keeping less of it changed nothing it answers.
describe("a socket's gate and cursors", () => {
  it("one object per socket and one per stream: the gate holds its cursors, a cursor its position", () => {
    const gate = new Gate({ id: "sock" } as TetherSocket, ["user:a"]);
    expect(gate.cursors).toBe(gate);
    const cursor = gate.get("user:a");
    expect(cursor).toBeInstanceOf(Cursor);
    // No position object inside the cursor: its fields are the position.
    expect(Object.values(cursor ?? {}).filter((v) => typeof v === "object" && v !== null && !Array.isArray(v))).toEqual(
      [],
    );
    expect(cursor?.pos).toEqual({ id: "0-0", epoch: "" });
  });

  it("a position read is a copy; setting it moves the cursor; continuity reads the cursor itself", () => {
    const cursor = new Cursor({ id: "1-0", epoch: "e1" }, undefined);
    const before = cursor.pos;
    cursor.pos = { id: "2-0", epoch: "e1" };
    expect(before).toEqual({ id: "1-0", epoch: "e1" });
    expect(cursor.pos).toEqual({ id: "2-0", epoch: "e1" });
    expect(continuity(cursor, event("3-0", "2-0"))).toBe("next");
    expect(continuity(cursor, event("2-0", "1-0"))).toBe("seen");
    expect(continuity(cursor, event("5-0", "4-0"))).toBe("gap");
    expect(continuity(cursor, event("3-0", "2-0", "e2"))).toBe("gap");
  });

  it("a second stream and its removal, iterated in order", () => {
    const gate = new Gate({ id: "sock" } as TetherSocket, ["user:a", "room:x"]);
    expect([...gate.keys()]).toEqual(["user:a", "room:x"]);
    expect(gate.delete("user:a")).toBe(true);
    expect([...gate.keys()]).toEqual(["room:x"]);
    expect(gate.delete("user:a")).toBe(false);
  });
});
