/**
 * What the bench and its child processes say to each other over IPC, and the
 * event payload both servers send, so both sides put the same bytes on the wire.
 */

/** A protocol: for each command kind, what is sent and what comes back. */
export type Protocol = Record<string, { command: object; result: object }>;

/** A client worker: holds socket.io-client sockets to one server at a time. */
export type WorkerProtocol = {
  /**
   * Opens `count` sockets, `concurrency` at a time; each waits for `welcome`.
   * With `cookies` (Tether), each first fetches a token, from the sessions in turn.
   */
  connect: {
    command: { url: string; cookies: string[]; count: number; concurrency: number };
    result: { opened: number; failed: number; firstError: string | undefined };
  };
  /** Closes every socket the worker holds. */
  close: { command: Record<string, never>; result: { closed: number } };
  /** Starts counting `event` on every held socket, until `count` arrive. */
  arm: { command: { event: string; count: number }; result: { sockets: number } };
  /** Resolves when the armed count has arrived (or fails after `timeoutMs`). */
  received: { command: { timeoutMs: number }; result: { received: number; lastSeq: number } };
};

/** The baseline server: plain Socket.IO, no auth. */
export type PlainProtocol = {
  /** `socket.emit` of `count` events to its one connected socket. */
  emit: { command: { event: string; count: number }; result: { emitted: number } };
};

/** What a child sends once it is ready to take commands. */
export interface Ready {
  ready: true;
  port?: number;
}

/** The event payload of the fan-out test (Tether adds `offset`; the baseline adds one of the same shape). */
export function benchPayload(seq: number): { seq: number; text: string } {
  return { seq, text: "the quick brown fox jumps over the lazy dog; the quick brown fox jumps" };
}
