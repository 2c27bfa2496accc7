import { sessionRoom } from "../auth/keys.js";
import { SETTLED } from "../store/topic-bus.js";
import type { TopicBus } from "../store/types.js";
import type { SocketLifetime } from "./socket-lifetime.js";
import type { TetherSocket } from "./types.js";

/**
 * The longest a handshake waits for its session's topic (a subscriber connection that is
 * reconnecting queues the subscribe): past it, the session check finds a missed end.
 */
const TOPIC_WAIT_MS = 2_000;

/** `promise`, or nothing once `ms` have passed. */
function atMost(promise: Promise<void>, ms: number): Promise<void> {
  if (promise === SETTLED) return SETTLED; // the topic was heard already: no timer on the hot path
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([promise, waited]).finally(() => clearTimeout(timer));
}

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

  /**
   * Adds a socket to its session (in the handshake); it leaves with the socket, whichever way.
   * Resolves once this instance hears the session's end (its topic subscribed), or after
   * TOPIC_WAIT_MS: a handshake that completes before that would miss a logout made right
   * after the client connected.
   */
  add(socket: TetherSocket, sid: string): Promise<void> {
    const room = sessionRoom(sid);
    let set = this.sockets.get(room);
    if (set === undefined) {
      set = new Set();
      this.sockets.set(room, set);
    }
    set.add(socket);
    this.lifetime.took(socket, this.part);
    // One watch per socket: the bus counts them, subscribing with the first and leaving with the last.
    return this.topics ? atMost(this.topics.watch(room), TOPIC_WAIT_MS) : SETTLED;
  }

  /** The socket left: out of its session's set, and its watch of the session's topic given back. */
  private release(socket: TetherSocket): void {
    const room = sessionRoom(socket.data.sid);
    const set = this.sockets.get(room);
    if (!set?.delete(socket)) return;
    if (set.size === 0) this.sockets.delete(room);
    this.topics?.unwatch(room);
  }

  /** The sockets of the session with this room tag (`session:<tag>`). */
  of(room: string): TetherSocket[] {
    return [...(this.sockets.get(room) ?? [])];
  }
}
