import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { SocketLifetime } from "../src/realtime/socket-lifetime.js";
import type { TetherSocket } from "../src/realtime/types.js";

// What the rooms ask before making a socket's entry at its first join: does it still hold the socket?
describe("SocketLifetime.holds", () => {
  it("true from took until the socket leaves, per part, and never again after", () => {
    const lifetime = new SocketLifetime();
    const released: string[] = [];
    const rooms = lifetime.part({ release: () => released.push("rooms") });
    const other = lifetime.part({ release: () => released.push("other") });
    const emitter = new EventEmitter();
    const socket = emitter as unknown as TetherSocket;
    expect(lifetime.holds(socket, rooms)).toBe(false);
    lifetime.took(socket, rooms);
    expect(lifetime.holds(socket, rooms)).toBe(true);
    expect(lifetime.holds(socket, other)).toBe(false);
    emitter.emit("disconnect", "transport close");
    expect(released).toEqual(["rooms"]);
    expect(lifetime.holds(socket, rooms)).toBe(false);
    // A part that takes after the socket left releases at once and holds nothing.
    lifetime.took(socket, other);
    expect(released).toEqual(["rooms", "other"]);
    expect(lifetime.holds(socket, other)).toBe(false);
  });
});
