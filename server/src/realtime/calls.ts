import { ErrorCode, type EventAck, payloadShapeProblem } from "@tether/shared";
import type { Logger } from "pino";
import { TetherError } from "../errors.js";
import { type EventHandlers, refused } from "./handlers.js";
import type { TetherSocket } from "./types.js";

/** What a handler call may hold, and for how long. */
export interface CallLimits {
  /** Deadline of one call: then it is answered UNAVAILABLE and its signal aborted. */
  timeoutMs: number;
  /** Calls one socket may have running at once. */
  perSocket: number;
  /** Calls one user may have running at once on this instance (all its sockets and sessions). */
  perUser: number;
}

/**
 * What a handler's result may be: deep enough for any real document, shallow
 * enough for Socket.IO's recursive encoder (a result it cannot encode would
 * throw inside the acknowledgement). Wider than the inbound bound on purpose: a
 * handler may wrap what it was sent.
 */
const RESULT_SHAPE = { maxDepth: 256, maxNodes: 200_000 } as const;

/**
 * Runs the app's handlers (`tether.handle`) for the inbound guard, within
 * bounds: calls in flight per socket and per user, a deadline per call, and an
 * AbortSignal that fires on that deadline and when the socket goes. A call
 * counts until it settles or its deadline passes, whichever is first: a
 * handler that ignores its signal is abandoned, not allowed to lock its user
 * out. Results are checked before they are sent: one Socket.IO cannot encode
 * (a BigInt, too deep) is answered INTERNAL and logged.
 */
export class HandlerCalls {
  /** Sockets with calls in flight: how many, and the signal that fires when the socket goes. */
  private readonly perSocket = new Map<string, SocketCalls>();
  private readonly perUser = new Map<string, number>();

  constructor(
    private readonly handlers: EventHandlers,
    private readonly limits: CallLimits,
    private readonly instance: string,
    private readonly logger: Logger,
  ) {}

  /** Calls in flight on this instance (for tests and metrics). */
  get inFlight(): number {
    let total = 0;
    for (const n of this.perUser.values()) total += n;
    return total;
  }

  /** Runs one validated call; never rejects. `undefined` when nobody is left to answer. */
  async run(socket: TetherSocket, event: string, payload: unknown): Promise<EventAck | undefined> {
    const { userId } = socket.data;
    if (
      (this.perSocket.get(socket.id)?.count ?? 0) >= this.limits.perSocket ||
      (this.perUser.get(userId) ?? 0) >= this.limits.perUser
    ) {
      return refused(ErrorCode.RateLimited, "Too many calls in flight: wait for an answer first.");
    }
    const calls = this.socketCalls(socket);
    calls.count += 1;
    bump(this.perUser, userId, +1);
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, calls.gone.signal]);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<EventAck>((resolve) => {
      timer = setTimeout(() => {
        const message = "The handler did not answer in time.";
        controller.abort(new TetherError(ErrorCode.Unavailable, message));
        this.logger.warn({ event: event.slice(0, 64), socket: socket.id }, "an event handler timed out");
        resolve(refused(ErrorCode.Unavailable, message));
      }, this.limits.timeoutMs);
    });
    try {
      const context = { userId, socketId: socket.id, instance: this.instance, signal };
      const reply = await Promise.race([this.handlers.call(event, payload, context), deadline]);
      if (!socket.connected) return undefined;
      return this.sendable(reply, event);
    } finally {
      clearTimeout(timer);
      calls.count -= 1;
      if (calls.count === 0) calls.release();
      bump(this.perUser, userId, -1);
    }
  }

  /** The socket's entry: one `disconnect` listener however many calls it runs, gone with its last call. */
  private socketCalls(socket: TetherSocket): SocketCalls {
    const existing = this.perSocket.get(socket.id);
    if (existing) return existing;
    const gone = new AbortController();
    const onDisconnect = () => gone.abort(new TetherError(ErrorCode.Unavailable, "The connection closed."));
    const calls: SocketCalls = {
      count: 0,
      gone,
      release: () => {
        socket.off("disconnect", onDisconnect);
        this.perSocket.delete(socket.id);
      },
    };
    socket.once("disconnect", onDisconnect);
    this.perSocket.set(socket.id, calls);
    return calls;
  }

  /** The reply, or INTERNAL when its result is not something Socket.IO can send. */
  private sendable(reply: EventAck, event: string): EventAck {
    if (!reply.ok) return reply;
    const problem = payloadShapeProblem(reply.result, RESULT_SHAPE);
    if (problem === undefined) return reply;
    this.logger.error({ event: event.slice(0, 64), problem }, "an event handler's result cannot be sent");
    return refused(ErrorCode.Internal, "Internal error.");
  }
}

interface SocketCalls {
  count: number;
  /** Aborted when the socket disconnects. */
  gone: AbortController;
  release: () => void;
}

function bump(counts: Map<string, number>, key: string, delta: 1 | -1): void {
  const n = (counts.get(key) ?? 0) + delta;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}
