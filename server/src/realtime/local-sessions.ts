import { sessionRoom } from "../auth/keys.js";
import type { TopicBus } from "../store/types.js";
import { onLeave } from "./socket-lifetime.js";
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

  constructor(private readonly topics?: Pick<TopicBus, "watch" | "unwatch">) {}

  /** Adds a socket to its session (in the handshake); it leaves with the socket, whichever way. */
  add(socket: TetherSocket, sid: string): void {
    const room = sessionRoom(sid);
    let set = this.sockets.get(room);
    if (set === undefined) {
      set = new Set();
      this.sockets.set(room, set);
      this.topics?.watch(room);
    }
    const own = set;
    own.add(socket);
    onLeave(socket, () => {
      own.delete(socket);
      if (own.size === 0 && this.sockets.get(room) === own) {
        this.sockets.delete(room);
        this.topics?.unwatch(room);
      }
    });
  }

  /** The sockets of the session with this room tag (`session:<tag>`). */
  of(room: string): TetherSocket[] {
    return [...(this.sockets.get(room) ?? [])];
  }
}
