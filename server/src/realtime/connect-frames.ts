import type { Socket as NetSocket } from "node:net";
import type { Socket } from "socket.io";

/** What this module reads of an Engine.IO connection (its class keeps `flush` private). */
interface EngineConnection {
  readonly transport: { readonly name: string; writable: boolean; readonly socket?: { _socket?: NetSocket } };
  flush(): void;
}

/**
 * A handshake's CONNECT ack and its `welcome` leave in one write. Called as the
 * handshake middleware lets the socket in: the connection's WebSocket transport is
 * marked busy, so Engine.IO keeps what is sent meanwhile in its buffer, in order
 * (the ack, then `welcome`, which follows within the same loop iteration whenever
 * no stream needs a store read: a reconnect that missed nothing, a connect whose
 * heads the handshake read). The iteration's check phase (`setImmediate`) marks it
 * free again and flushes the buffer with the connection's socket corked: Node hands
 * the kernel one `writev` for both frames, instead of the ack alone and `welcome`
 * once the ack's write completed (Engine.IO sends one batch at a time). That is one
 * system call fewer per connect and reconnect; the ack waits at most for the rest
 * of the iteration. A `welcome` that waits for the store leaves later, on its own,
 * as before. Polling connections are left alone: their `writable` is the pending
 * request's. A volatile packet meanwhile is dropped, as on any busy transport.
 */
export function coalesceConnectFrames(socket: Socket): void {
  const conn = socket.conn as unknown as EngineConnection;
  const transport = conn.transport;
  if (transport.name !== "websocket" || !transport.writable) return;
  transport.writable = false;
  setImmediate(() => {
    // Nothing was sent on this transport meanwhile (it was busy): it is free, as it was.
    transport.writable = true;
    // Upgrades are polling's: a WebSocket connection keeps its transport, open or closed.
    if (conn.transport !== transport) return;
    const tcp = transport.socket?._socket;
    tcp?.cork();
    conn.flush();
    tcp?.uncork();
  });
}
