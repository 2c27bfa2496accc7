import type { Socket } from "node:net";
import type { Cluster, Redis } from "ioredis";

/** Marks a socket whose writes are already coalesced (ioredis may hand the same one twice). */
const COALESCED = Symbol("tether.coalescedWrites");

/**
 * Every command a connection sends in one iteration of the event loop leaves in
 * one write: the first write of an iteration corks the socket and the iteration's
 * check phase (`setImmediate`) uncorks it, so Node hands the kernel one `writev`.
 * An iteration's poll phase runs the callback of every connection with data in
 * it: under load, the handshakes of many sockets, each with its own script, share
 * one write to Redis and one read of its replies (uncorked at the end of each
 * callback's turn, each handshake wrote alone). A command waits at most for the
 * rest of that phase's callbacks.
 *
 * This is what ioredis's `enableAutoPipelining` is for, without its cost: that
 * option builds a `Pipeline` per turn (a promise, a copy of every defined script
 * onto the pipeline object), which at a handshake's one or two commands per turn
 * cost more CPU than the writes it saved (measured: 36–50 µs per command against
 * 16–18 here at two in flight; 9 against 3.4–4 at 32). Commands, replies and
 * their order are ioredis's own: only the moment bytes reach the socket moves,
 * and never past the current iteration.
 */
export function coalesceWrites(client: Redis | Cluster): void {
  if (client.isCluster) {
    // Each node connection is a Redis of its own, made as the Cluster discovers nodes.
    (client as Cluster).on("+node", (node: Redis) => coalesceWrites(node));
    return;
  }
  const redis = client as Redis;
  // ioredis makes a new socket per (re)connect and emits "connect" once it is up.
  redis.on("connect", () => corkPerIteration((redis as unknown as { stream?: Socket }).stream));
}

function corkPerIteration(socket: (Socket & { [COALESCED]?: true }) | undefined): void {
  if (socket === undefined || socket[COALESCED]) return;
  socket[COALESCED] = true;
  const write = socket.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: Socket, ...args: Parameters<Socket["write"]>): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      setImmediate(uncork);
    }
    return write.apply(this, args);
  } as Socket["write"];
}
