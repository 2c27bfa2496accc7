import type { TetherSocket } from "./types.js";

/** The parts of Engine.IO's connection that hold what was sent but not yet written out (not in its public types). */
interface EngineInternals {
  writeBuffer?: { data?: unknown }[];
  /** The WebSocket transport's `ws` socket: `bufferedAmount` counts what its TCP socket still holds. */
  transport?: { socket?: { bufferedAmount?: unknown } };
}

/** How often a waiting replay looks again, at first and at most. */
const POLL_MS = { first: 10, max: 250 } as const;

/**
 * Bytes emitted to a socket that have not reached the network yet: packets
 * Engine.IO holds (a polling client between two polls) plus what the WebSocket
 * still buffers. A client that stops reading makes this grow without end.
 */
export function bufferedBytes(socket: TetherSocket): number {
  const conn = socket.conn as unknown as EngineInternals;
  let total = 0;
  for (const packet of conn.writeBuffer ?? []) {
    const { data } = packet;
    total += typeof data === "string" ? data.length : data instanceof Uint8Array ? data.byteLength : 0;
  }
  const wsBuffered = conn.transport?.socket?.bufferedAmount;
  return total + (typeof wsBuffered === "number" ? wsBuffered : 0);
}

/**
 * Resolves once the socket has at most `maxBytes` waiting (true), or has gone
 * (false). A client that never reads again is ended by Socket.IO's ping
 * timeout, which ends this wait too.
 */
export async function drained(socket: TetherSocket, maxBytes: number): Promise<boolean> {
  for (let delay: number = POLL_MS.first; socket.connected; delay = Math.min(delay * 2, POLL_MS.max)) {
    if (bufferedBytes(socket) <= maxBytes) return true;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
  return false;
}
