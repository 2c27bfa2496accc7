import type { Logger } from "pino";
import type { Metrics } from "../observability/metrics.js";
import type { TetherServer, TetherSocket } from "../realtime/types.js";

/** Time between two batches of disconnects, before jitter. */
const BATCH_INTERVAL_MS = 100;

function shuffled<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/**
 * Moves this instance's clients elsewhere, spread over `windowMs` in jittered
 * batches so the survivors see a ramp, not a spike. Each socket's transport is
 * closed, which every Socket.IO client treats as "reconnect" (a server-side
 * `disconnect()` would tell stock clients to stay away).
 */
export async function drainSockets(
  io: TetherServer,
  windowMs: number,
  metrics: Metrics,
  logger: Logger,
): Promise<void> {
  const sockets = shuffled([...io.of("/").sockets.values()]);
  const batches = Math.max(1, Math.floor(windowMs / BATCH_INTERVAL_MS));
  const size = Math.ceil(sockets.length / batches);
  let remaining = sockets.length;
  metrics.draining.set(remaining);
  logger.info({ sockets: remaining, windowMs }, "draining: moving clients to other instances");
  for (let start = 0; start < sockets.length; start += size) {
    for (const socket of sockets.slice(start, start + size)) close(socket);
    remaining = Math.max(0, remaining - size);
    metrics.draining.set(remaining);
    if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, BATCH_INTERVAL_MS * (0.5 + Math.random())));
  }
  metrics.draining.set(0);
}

function close(socket: TetherSocket): void {
  if (socket.connected) socket.conn.close();
}
