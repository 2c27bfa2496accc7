import { ClientEventSchemas, ErrorCode, type EventAck } from "@tether/shared";
import type { Logger } from "pino";
import { RateLimiterMemory } from "rate-limiter-flexible";
import { TetherError } from "../errors.js";
import { type EventHandlers, refused } from "./handlers.js";
import { onLeave } from "./socket-lifetime.js";
import type { TetherSocket } from "./types.js";

export interface SocketLimits {
  /** Events one socket may send per second (a burst of this many, refilled each second). */
  eventsPerSecond: number;
  /** Events one session may send per second across its sockets on one instance. */
  sessionEventsPerSecond: number;
  /** Sockets one session may hold on one instance. */
  socketsPerSession: number;
}

/** The per-socket and per-session event limiters (in process: a socket lives on one instance). */
export interface EventLimiters {
  socket: RateLimiterMemory;
  session: RateLimiterMemory;
}

/** Refused events tolerated per socket before it is disconnected as abusive. */
const MAX_REFUSED_EVENTS = 20;

type Ack = (reply: EventAck) => void;

/**
 * Guards every inbound event before any handler runs: unknown events are
 * refused, the socket's and its session's rate limits consumed, and the
 * arguments validated (built-in events against their schema in @tether/shared,
 * the app's against the schema it registered with `tether.handle`). A socket
 * that keeps sending refused events is disconnected. The app's handlers are run
 * from here, with the validated payload, and answered with an EventAck.
 */
export function guardEvents(
  socket: TetherSocket,
  limiters: EventLimiters,
  handlers: EventHandlers,
  instance: string,
  logger: Logger,
): void {
  let refusals = 0;
  const refuse = (code: ErrorCode, reason: string, ack: Ack | undefined) => {
    refusals += 1;
    ack?.(refused(code, reason));
    if (refusals > MAX_REFUSED_EVENTS) {
      logger.warn({ socket: socket.id, reason }, "disconnecting an abusive socket");
      socket.disconnect(true);
    }
  };
  socket.use(([event, ...rest], next) => {
    const last = rest.at(-1);
    const ack = typeof last === "function" ? (last as Ack) : undefined;
    const args = ack ? rest.slice(0, -1) : rest;
    const name = typeof event === "string" ? event : "";
    const schema = Object.hasOwn(ClientEventSchemas, name)
      ? ClientEventSchemas[name as keyof typeof ClientEventSchemas]
      : undefined;
    if (!schema && !handlers.has(name)) {
      return refuse(ErrorCode.InvalidInput, `unknown event "${String(event).slice(0, 64)}"`, ack);
    }
    if (schema && !schema.safeParse(args).success) {
      return refuse(ErrorCode.InvalidInput, `invalid arguments for "${name}"`, ack);
    }
    consume(limiters, socket).then(
      async () => {
        if (schema) return next();
        const valid = await handlers.validate(name, args);
        if (!valid.ok) return refuse(ErrorCode.InvalidInput, valid.message, ack);
        const context = { userId: socket.data.userId, socketId: socket.id, instance };
        const reply = await handlers.call(name, valid.value, context);
        if (socket.connected) ack?.(reply);
      },
      () => refuse(ErrorCode.RateLimited, "too many events", ack),
    );
  });
}

/** One point from the socket's budget, then one from its session's. */
async function consume(limiters: EventLimiters, socket: TetherSocket): Promise<void> {
  await limiters.socket.consume(socket.id);
  await limiters.session.consume(socket.data.sid);
}

/** Counts sockets per session on this instance, and refuses past the limit. */
export class SessionSocketCounter {
  private readonly counts = new Map<string, number>();

  constructor(private readonly max: number) {}

  /**
   * Call in the handshake; throws RATE_LIMITED when the session already holds
   * `max` sockets here. The slot is freed on every way out: disconnect, a
   * refused handshake, or a client that left before it connected.
   */
  admit(socket: TetherSocket): void {
    const { sid } = socket.data;
    const count = this.counts.get(sid) ?? 0;
    if (count >= this.max) throw new TetherError(ErrorCode.RateLimited, "Too many connections for this session.");
    this.counts.set(sid, count + 1);
    onLeave(socket, () => {
      const left = (this.counts.get(sid) ?? 1) - 1;
      if (left <= 0) this.counts.delete(sid);
      else this.counts.set(sid, left);
    });
  }
}

/** The event limiters, in process: a socket lives on one instance, and the session limit is per instance. */
export function eventLimiters(limits: SocketLimits): EventLimiters {
  return {
    socket: new RateLimiterMemory({ keyPrefix: "socket-events", points: limits.eventsPerSecond, duration: 1 }),
    session: new RateLimiterMemory({ keyPrefix: "session-events", points: limits.sessionEventsPerSecond, duration: 1 }),
  };
}
