import { ClientEventSchemas, ErrorCode } from "@tether/shared";
import type { Logger } from "pino";
import { RateLimiterMemory } from "rate-limiter-flexible";
import { TetherError } from "../errors.js";
import { onLeave } from "./socket-lifetime.js";
import type { TetherSocket } from "./types.js";

export interface SocketLimits {
  /** Events one socket may send per second (a burst of this many, refilled each second). */
  eventsPerSecond: number;
  /** Sockets one session may hold on one instance. */
  socketsPerSession: number;
}

/** Refused events tolerated per socket before it is disconnected as abusive. */
const MAX_REFUSED_EVENTS = 20;

/**
 * Guards every inbound event before any handler runs: unknown events are
 * dropped, known ones validated against their schema in @tether/shared, and a
 * socket that floods is throttled, then disconnected.
 */
export function guardEvents(socket: TetherSocket, limiter: RateLimiterMemory, logger: Logger): void {
  let refused = 0;
  const refuse = (reason: string, ack: unknown) => {
    refused += 1;
    if (typeof ack === "function") ack({ error: { code: ErrorCode.InvalidInput, message: reason } });
    if (refused > MAX_REFUSED_EVENTS) {
      logger.warn({ socket: socket.id, reason }, "disconnecting an abusive socket");
      socket.disconnect(true);
    }
  };
  socket.use(([event, ...args], next) => {
    const schema = Object.hasOwn(ClientEventSchemas, event)
      ? ClientEventSchemas[event as keyof typeof ClientEventSchemas]
      : undefined;
    const ack = args.at(-1);
    if (!schema) return refuse(`unknown event "${String(event).slice(0, 64)}"`, ack);
    if (!schema.safeParse(typeof ack === "function" ? args.slice(0, -1) : args).success) {
      return refuse(`invalid arguments for "${event}"`, ack);
    }
    limiter.consume(socket.id).then(
      () => next(),
      () => refuse("too many events", ack),
    );
  });
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

/** The per-socket event limiter (in process: a socket lives on one instance). */
export function eventLimiter(limits: SocketLimits): RateLimiterMemory {
  return new RateLimiterMemory({ keyPrefix: "socket-events", points: limits.eventsPerSecond, duration: 1 });
}
