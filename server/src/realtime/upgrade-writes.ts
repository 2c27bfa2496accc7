import type { IncomingMessage } from "node:http";

/**
 * An accepted WebSocket upgrade's first two writes leave in one: ws's `101 Switching
 * Protocols` and Engine.IO's `open` packet. Called once Engine.IO has accepted the
 * request (its `allowRequest`, its last check), it corks the connection's socket, and
 * the iteration's check phase (`setImmediate`) uncorks it: by then ws has written the
 * 101 and Engine.IO, whose handshake awaits only a microtask (its id), the `open`
 * packet, so Node hands the kernel one `writev` for both. That is one system call
 * fewer on every connect and reconnect, the write being among the dearest steps of a
 * handshake.
 *
 * Refusals still reach the client: ws's own (a bad version or key) `end` the socket,
 * which uncorks it. Engine.IO's refusals after the 101 (a protocol version it does not
 * speak, an id it could not make) write a 400 and destroy the socket, which drops what
 * is corked: the client sees the connection close, where it saw a 400 after a 101 that
 * no WebSocket client reads. Polling requests are left alone.
 */
export function coalesceUpgradeWrites(req: IncomingMessage): void {
  // Node's HTTP parser sets `upgrade` on every request it hands to `upgrade` listeners (untyped).
  if ((req as IncomingMessage & { upgrade?: boolean }).upgrade !== true) return;
  const socket = req.socket;
  socket.cork();
  setImmediate(() => socket.uncork());
}
