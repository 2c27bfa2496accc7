import type { TetherSocket } from "./types.js";

/** A part of the instance that holds something for a socket until it leaves (a slot, a cursor, a count). */
export interface Holder {
  /** Gives back what this part holds for the socket: called once, when it leaves. */
  release(socket: TetherSocket): void;
}

/** Which parts hold something for a socket (one bit each), or LEFT once it has left. */
const HELD = Symbol("tether.held");
const LEFT = -1;
type Tracked = TetherSocket & { [HELD]?: number };

/** Parts per lifetime, at most: one bit each in a small integer. */
const MAX_PARTS = 30;

/**
 * What runs when a socket leaves this instance, whichever way: its `disconnect`,
 * its connection closing before it connected (the client left mid-handshake:
 * Socket.IO then never emits `disconnect`; the handshake calls `leave` when it
 * finds the connection gone), or its handshake being refused (`leave` too).
 *
 * Memory is the point: per socket there is one small integer (which parts hold
 * something for it) and one `disconnect` listener shared by every socket (no
 * closure, no `once` wrapper, no callback list). Each part registers once, at
 * start, and releases what it holds from the socket alone (its id, its data).
 * Parts release in the order they were registered.
 *
 * @example
 * const slot = lifetime.part({ release: () => free() });
 * take(); lifetime.took(socket, slot);
 */
export class SocketLifetime {
  private readonly parts: Holder[] = [];
  /** The one `disconnect` listener: Socket.IO calls it with the socket as `this`. */
  private readonly onDisconnect: (this: TetherSocket) => void;

  constructor() {
    const lifetime = this;
    this.onDisconnect = function (this: TetherSocket) {
      lifetime.leave(this);
    };
  }

  /** Registers a part; the returned bit is what `took` is told. */
  part(holder: Holder): number {
    if (this.parts.length >= MAX_PARTS) throw new Error("SocketLifetime: too many parts");
    this.parts.push(holder);
    return 1 << (this.parts.length - 1);
  }

  /** The part `bit` now holds something for the socket: released once it leaves (at once if it has left). */
  took(socket: TetherSocket, bit: number): void {
    const tracked = socket as Tracked;
    const held = tracked[HELD];
    if (held === LEFT) {
      this.release(socket, bit);
      return;
    }
    if (held === undefined) socket.on("disconnect", this.onDisconnect);
    tracked[HELD] = (held ?? 0) | bit;
  }

  /** Whether the part `bit` holds something for the socket, which has not left. */
  holds(socket: TetherSocket, bit: number): boolean {
    const held = (socket as Tracked)[HELD];
    return held !== undefined && held !== LEFT && (held & bit) !== 0;
  }

  /** The socket has left (or will never connect): every part releases what it holds, once. */
  leave(socket: TetherSocket): void {
    const tracked = socket as Tracked;
    const held = tracked[HELD];
    tracked[HELD] = LEFT;
    if (held === undefined || held === LEFT) return;
    this.release(socket, held);
  }

  private release(socket: TetherSocket, bits: number): void {
    for (let i = 0; i < this.parts.length; i++) if (bits & (1 << i)) this.parts[i]?.release(socket);
  }
}
