import type { TetherSocket } from "./types.js";

/**
 * What runs when a socket leaves: the callbacks registered with `onLeave`, in
 * order, behind one listener pair per socket (not one pair and one closure per
 * callback: a connect registers several). `null` once it has left.
 */
const LEAVE = Symbol("tether.leave");
type Leaving = TetherSocket & { [LEAVE]?: { callbacks: (() => void)[]; leave: () => void } | null };

/** The socket leaves: every callback once, the listeners off. */
function left(socket: Leaving): void {
  const leaving = socket[LEAVE];
  if (!leaving) return;
  socket[LEAVE] = null;
  socket.off("disconnect", leaving.leave);
  socket.conn.off("close", leaving.leave);
  for (const fn of leaving.callbacks) fn();
}

/**
 * Calls `fn` exactly once when the socket leaves this instance, whichever way:
 * its `disconnect`, its connection closing before it connected (the client
 * left mid-handshake: Socket.IO then never emits `disconnect`), or its
 * handshake being refused (`handshakeRefused`). Register anything taken in
 * the handshake here, so no path out of it keeps it. Callbacks run in the
 * order they were registered.
 *
 * @example
 * slots.take(sid);
 * onLeave(socket, () => slots.free(sid));
 */
export function onLeave(socket: TetherSocket, fn: () => void): void {
  const target = socket as Leaving;
  const leaving = target[LEAVE];
  if (leaving) {
    leaving.callbacks.push(fn);
    return;
  }
  // Gone already (the client left while the handshake awaited the store, or it left before): nothing will fire later.
  if (leaving === null || socket.conn.readyState === "closed") {
    target[LEAVE] = null;
    fn();
    return;
  }
  const leave = () => left(target);
  target[LEAVE] = { callbacks: [fn], leave };
  socket.once("disconnect", leave);
  // A connected socket's `disconnect` comes first (Socket.IO listens to the connection before us).
  socket.conn.once("close", leave);
}

/** The handshake refused the socket: it will never connect, so it leaves now. */
export function handshakeRefused(socket: TetherSocket): void {
  if (!socket.connected) left(socket as Leaving);
}
