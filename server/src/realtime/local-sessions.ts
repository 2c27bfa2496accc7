import { sessionRoom } from "../auth/keys.js";
import { SETTLED } from "../store/topic-bus.js";
import type { TopicBus } from "../store/types.js";
import { Linger } from "./linger.js";
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
 * a Socket.IO room. While a session has a socket here, and for the linger time
 * after its last one left (a client coming back finds it subscribed), this
 * instance watches its topic (`topics`): the session's end is routed to the
 * instances holding its sockets, not to every instance.
 */
export class LocalSessions {
  private readonly sockets = new Map<string, Set<TetherSocket>>();
  private readonly part: number;
  /** Sessions whose last socket left: each keeps that socket's watch of its topic until it expires. */
  private readonly linger: Linger<string>;

  constructor(
    private readonly lifetime: SocketLifetime,
    private readonly topics?: Pick<TopicBus, "watch" | "unwatch">,
    /** How long a session's topic stays watched after its last socket here left (TETHER_SUBSCRIPTION_LINGER). */
    lingerMs = 0,
  ) {
    this.part = lifetime.part({ release: (socket) => this.release(socket) });
    this.linger = new Linger(lingerMs, (room) => this.topics?.unwatch(room));
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
    } else shareIdentityStrings(socket, set);
    set.add(socket);
    this.lifetime.took(socket, this.part);
    if (!this.topics) return SETTLED;
    // One watch per socket: the bus counts them, subscribing with the first and leaving with the last.
    const heard = this.topics.watch(room);
    // A lingering session held its last socket's watch: given back now that this socket holds one.
    if (this.linger.take(room)) this.topics.unwatch(room);
    return atMost(heard, TOPIC_WAIT_MS);
  }

  /** The socket left: out of its session's set, and its watch of the session's topic given back (the last one lingers). */
  private release(socket: TetherSocket): void {
    const room = sessionRoom(socket.data.sid);
    const set = this.sockets.get(room);
    if (!set?.delete(socket)) return;
    if (set.size > 0) return void this.topics?.unwatch(room);
    this.sockets.delete(room);
    this.linger.park(room);
  }

  /** Stops lingering (the instance is closing: its subscriptions end with their connection). */
  stop(): void {
    this.linger.stop();
  }

  /** The sockets of the session with this room tag (`session:<tag>`). */
  of(room: string): TetherSocket[] {
    return [...(this.sockets.get(room) ?? [])];
  }
}

/**
 * A session's sockets here share its id and user id strings: each handshake parsed them anew
 * from the store's reply, and an idle socket would keep its own copies for its life (≈ 70 B).
 * Only equal strings are shared (the room tag is a hash of the id).
 */
function shareIdentityStrings(socket: TetherSocket, session: Set<TetherSocket>): void {
  const other = session.values().next().value;
  if (other === undefined) return;
  const [mine, theirs] = [socket.data, other.data];
  if (mine.sid !== theirs.sid) return;
  mine.sid = theirs.sid;
  if (mine.userId === theirs.userId) mine.userId = theirs.userId;
}
