import { ErrorCode } from "@tether/shared";
import { TetherError } from "../errors.js";
import type { TetherSocket } from "./types.js";

/**
 * Socket.IO CONNECTs one Engine.IO connection may send. A client sends one, and
 * a few more after refusals it can recover from (a fresh token, a busy
 * instance); Socket.IO itself takes CONNECT after CONNECT on one connection, so
 * without a cap one WebSocket could send thousands a second.
 */
const MAX_CONNECTS_PER_TRANSPORT = 4;

type Connection = TetherSocket["conn"];

/**
 * Counts handshakes per Engine.IO connection: one at a time, and at most
 * MAX_CONNECTS_PER_TRANSPORT in its life: the last refusal closes the
 * connection once it was sent, and one more attempt closes it at once (the
 * client's reconnection then opens a new one, which pays the per-address limits again).
 */
export class ConnectAttempts {
  /**
   * Per connection, for its life: its handshakes so far times two, plus one while one is in
   * flight. A number, not an object: every idle socket's connection keeps its entry.
   */
  private readonly attempts = new WeakMap<Connection, number>();

  /**
   * Call first in the handshake: throws RATE_LIMITED for a connection past its
   * cap (then closes it) or with a handshake in flight. Returns what to call when
   * this handshake ends, admitted or refused.
   */
  enter(socket: TetherSocket): (refused: boolean) => void {
    const { conn } = socket;
    const entry = this.attempts.get(conn) ?? 0;
    const count = (entry >> 1) + 1;
    const pending = (entry & 1) === 1;
    this.attempts.set(conn, (count << 1) | (pending ? 1 : 0));
    if (count > MAX_CONNECTS_PER_TRANSPORT) {
      // At once, not after a refusal: Engine.IO ignores every packet after this, even those already
      // read in the same chunk (a flood arrives as thousands of frames in one read), and the
      // WebSocket is cut rather than closed politely, so nothing more of the flood is even parsed.
      conn.close(true);
      terminate(conn);
      throw new TetherError(ErrorCode.RateLimited, "Too many handshakes on one connection.");
    }
    if (pending) throw new TetherError(ErrorCode.RateLimited, "A handshake is already in progress.");
    this.attempts.set(conn, (count << 1) | 1);
    return (refused) => {
      // Counted since: only the flag is cleared.
      const now = this.attempts.get(conn) ?? 0;
      this.attempts.set(conn, now & ~1);
      if (refused && now >> 1 >= MAX_CONNECTS_PER_TRANSPORT) closeAfterRefusal(conn);
    };
  }
}

/**
 * Closes the connection once the refusal went out: the refusal is written on a
 * later tick, and Engine.IO's close waits for its write buffer to drain.
 */
function closeAfterRefusal(conn: Connection): void {
  setImmediate(() => conn.close());
}

/** Cuts a WebSocket transport's TCP connection (ws's `terminate`); polling transports hold none. */
function terminate(conn: Connection): void {
  const ws = (conn as unknown as { transport?: { socket?: { terminate?: unknown } } }).transport?.socket;
  if (typeof ws?.terminate === "function") (ws.terminate as () => void).call(ws);
}
