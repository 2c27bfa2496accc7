import { sessionRoom } from "../auth/keys.js";
import { onLeave } from "./socket-lifetime.js";
import type { TetherSocket } from "./types.js";

/**
 * This instance's sockets by session (keyed by the session's room tag, which is
 * what control messages carry: never the session id). A plain local index, not
 * a Socket.IO room: with the sharded adapter every room is a Redis subscription,
 * and a session needs none.
 */
export class LocalSessions {
  private readonly sockets = new Map<string, Set<TetherSocket>>();

  /** Adds a socket to its session (in the handshake); it leaves with the socket, whichever way. */
  add(socket: TetherSocket, sid: string): void {
    const room = sessionRoom(sid);
    const set = this.sockets.get(room) ?? new Set();
    set.add(socket);
    this.sockets.set(room, set);
    onLeave(socket, () => {
      set.delete(socket);
      if (set.size === 0 && this.sockets.get(room) === set) this.sockets.delete(room);
    });
  }

  /** The sockets of the session with this room tag (`session:<tag>`). */
  of(room: string): TetherSocket[] {
    return [...(this.sockets.get(room) ?? [])];
  }
}
