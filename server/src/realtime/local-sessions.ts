import { sessionRoom } from "../auth/keys.js";
import type { TopicBus } from "../store/types.js";
import type { SocketLifetime } from "./socket-lifetime.js";
import type { TetherSocket } from "./types.js";

/**
 * This instance's sockets by session (keyed by the session's room tag, which is
 * what control messages carry: never the session id). A plain local index, not
 * a Socket.IO room. While a session has a socket here, this instance watches its
 * topic (`topics`): the session's end is routed to the instances holding its
 * sockets, not to every instance.
 */
export class LocalSessions {
  private readonly sockets = new Map<string, Set<TetherSocket>>();
  private readonly part: number;

  constructor(
    private readonly lifetime: SocketLifetime,
    private readonly topics?: Pick<TopicBus, "watch" | "unwatch">,
  ) {
    this.part = lifetime.part({ release: (socket) => this.release(socket) });
  }

  /** Adds a socket to its session (in the handshake); it leaves with the socket, whichever way. */
  add(socket: TetherSocket, sid: string): void {
    const room = sessionRoom(sid);
    let set = this.sockets.get(room);
    if (set === undefined) {
      set = new Set();
      this.sockets.set(room, set);
      this.topics?.watch(room);
    }
    set.add(socket);
    this.lifetime.took(socket, this.part);
  }

  /** The socket left: out of its session's set, and the session's topic unwatched with its last socket. */
  private release(socket: TetherSocket): void {
    const room = sessionRoom(socket.data.sid);
    const set = this.sockets.get(room);
    if (!set?.delete(socket) || set.size > 0) return;
    this.sockets.delete(room);
    this.topics?.unwatch(room);
  }

  /** The sockets of the session with this room tag (`session:<tag>`). */
  of(room: string): TetherSocket[] {
    return [...(this.sockets.get(room) ?? [])];
  }
}
