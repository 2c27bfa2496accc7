import type { TetherSocket } from "./types.js";

/** The leave callbacks of sockets still in their handshake, for `handshakeRefused`. */
const pending = new WeakMap<TetherSocket, Set<() => void>>();

/**
 * Calls `fn` exactly once when the socket leaves this instance, whichever way:
 * its `disconnect`, its connection closing before it connected (the client
 * left mid-handshake: Socket.IO then never emits `disconnect`), or its
 * handshake being refused (`handshakeRefused`). Register anything taken in
 * the handshake here, so no path out of it keeps it.
 *
 * @example
 * slots.take(sid);
 * onLeave(socket, () => slots.free(sid));
 */
export function onLeave(socket: TetherSocket, fn: () => void): void {
  let left = false;
  const leave = () => {
    if (left) return;
    left = true;
    socket.off("disconnect", leave);
    socket.conn.off("close", leave);
    pending.get(socket)?.delete(leave);
    fn();
  };
  // Gone already (the client left while the handshake awaited the store): nothing will fire later.
  if (socket.conn.readyState === "closed") {
    leave();
    return;
  }
  socket.once("disconnect", leave);
  // A connected socket's `disconnect` comes first (Socket.IO listens to the connection before us).
  socket.conn.once("close", leave);
  if (!socket.connected) {
    const callbacks = pending.get(socket) ?? new Set();
    callbacks.add(leave);
    pending.set(socket, callbacks);
  }
}

/** The handshake refused the socket: it will never connect, so it leaves now. */
export function handshakeRefused(socket: TetherSocket): void {
  const callbacks = pending.get(socket);
  pending.delete(socket);
  for (const leave of callbacks ?? []) leave();
}
