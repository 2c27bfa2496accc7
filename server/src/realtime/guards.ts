import { ClientEventSchemas, ErrorCode, type EventAck, payloadShapeProblem } from "@tether/shared";
import type { Logger } from "pino";
import { RateLimiterMemory } from "rate-limiter-flexible";
import { Socket } from "socket.io";
import { TetherError } from "../errors.js";
import { HandlerCalls } from "./calls.js";
import { type EventHandlers, refused } from "./handlers.js";
import type { Run } from "./socket-class.js";
import type { SocketLifetime } from "./socket-lifetime.js";
import type { BuiltinListeners, TetherSocket } from "./types.js";

export interface SocketLimits {
  /** Events one socket may send per second (a burst of this many, refilled each second). */
  eventsPerSecond: number;
  /** Events one session may send per second across its sockets on one instance. */
  sessionEventsPerSecond: number;
  /** Sockets one session may hold on one instance. */
  socketsPerSession: number;
  /** Sockets one user may hold on one instance, its sessions together. */
  socketsPerUser: number;
  /** Deepest nesting of an inbound event's payload: deeper ones are refused before anything walks them. */
  maxPayloadDepth: number;
  /** Deadline of one `tether.handle` call. */
  handlerTimeoutMs: number;
  /** `tether.handle` calls one socket may have running at once. */
  callsPerSocket: number;
  /** `tether.handle` calls one user may have running at once on one instance. */
  callsPerUser: number;
  /** Replayed bytes one socket may have waiting to be sent before its replay waits for it to drain. */
  replayBufferBytes: number;
  /**
   * Refused events one socket may send per window before it is disconnected as
   * abusive: a rate, so a socket that lives for days is not cut off by the odd
   * invalid payload it sent over its whole life.
   */
  refusedEvents: { points: number; durationMs: number };
}

/** The per-socket and per-session event limiters (in process: a socket lives on one instance). */
interface EventLimiters {
  socket: RateLimiterMemory;
  session: RateLimiterMemory;
  /** Refused events per socket. */
  refused: RateLimiterMemory;
}

/** Most values in one inbound payload (a 64 KB message holds at most about 32,000). */
const MAX_PAYLOAD_NODES = 40_000;

type Ack = (reply: unknown) => void;

/**
 * Guards every inbound event before any listener runs: its acknowledgement is
 * made safe to call with anything, its payload's shape bounded (depth, size)
 * before anything walks it recursively, unknown events refused, the socket's
 * and its session's rate limits consumed, and the arguments validated
 * (built-in events against their schema in @tether/shared, the app's against
 * the schema it registered with `tether.handle`). A socket that keeps sending
 * refused events is disconnected. The app's handlers are run from here, within
 * their bounds (see HandlerCalls).
 */
export class EventGuard {
  private readonly limiters: EventLimiters;
  private readonly calls: HandlerCalls;
  private readonly shape: { maxDepth: number; maxNodes: number };
  /**
   * Each socket's `run`: one function for the instance, on the prototype of the namespace's
   * sockets (see `guardedRun` and `makeSocketsGuarded`).
   */
  readonly run: Run;

  constructor(
    limits: SocketLimits,
    private readonly handlers: EventHandlers,
    instance: string,
    private readonly logger: Logger,
    /** Tether's own events, run here once validated (an event without one goes on to the socket's listeners). */
    private readonly builtins: BuiltinListeners = {},
  ) {
    this.shape = { maxDepth: limits.maxPayloadDepth + 1, maxNodes: MAX_PAYLOAD_NODES };
    this.limiters = eventLimiters(limits);
    this.calls = new HandlerCalls(
      handlers,
      { timeoutMs: limits.handlerTimeoutMs, perSocket: limits.callsPerSocket, perUser: limits.callsPerUser },
      instance,
      logger,
    );
    this.run = this.guardedRun();
  }

  /** Handler calls running on this instance. */
  get callsInFlight(): number {
    return this.calls.inFlight;
  }

  /**
   * Socket.IO's `run`, guarding first. Socket.IO 4 runs a socket's middlewares for every inbound
   * event from `dispatch`, through `this.run(event, fn)` (`fn` emits the event to the listeners,
   * or the error); `socket.use` would push a closure into a per-socket list that V8 grows to 17
   * slots at its first push (≈ 0.3 KiB per idle socket). This function, the `run` of the
   * namespace's sockets (on their class's prototype: `makeSocketsGuarded`), gets the socket as
   * `this`, guards the event and then calls Socket.IO's own `run` (the host's middlewares, then
   * `fn`). Sound because: Socket.IO's prototype is left as it is (other servers in the process
   * are untouched); the sockets are made from that class, so they share one hidden class (a
   * prototype swapped in later, by `Object.setPrototypeOf`, would give every socket that gains a
   * property a map of its own, ≈ 0.4 KiB; an own `run` a property array); `run` is called only from
   * `dispatch`, for events only (no acknowledgement or disconnect packet goes through it); and
   * `assertRunDispatch` checks both at start, so a Socket.IO that renamed either fails loudly
   * rather than running unguarded (server/test/socket-footprint.test.ts checks the installed one).
   */
  private guardedRun(): Run {
    const run = assertRunDispatch();
    const guard = this;
    return function guardedRun(this: TetherSocket, event: unknown[], fn: (err?: Error) => void): void {
      guard.inbound(this, event, () => run.call(this, event, fn));
    };
  }

  private refuse(socket: TetherSocket, code: ErrorCode, reason: string, ack: Ack | undefined): void {
    ack?.(refused(code, reason));
    this.limiters.refused.consume(socket.id).catch(() => {
      this.logger.warn({ socket: socket.id, reason }, "disconnecting an abusive socket");
      socket.disconnect(true);
    });
  }

  private inbound(socket: TetherSocket, packet: unknown[], next: () => void): void {
    const { logger, handlers } = this;
    const [event, ...rest] = packet;
    const last = rest.at(-1);
    let ack: Ack | undefined;
    if (typeof last === "function") {
      // Every listener gets the safe acknowledgement in place of Socket.IO's own.
      ack = safeAck(last as Ack, socket, logger);
      packet[packet.length - 1] = ack;
    }
    const args = ack ? rest.slice(0, -1) : rest;
    // The arguments array is one level: a payload of depth maxPayloadDepth is allowed.
    const problem = payloadShapeProblem(args, this.shape);
    if (problem !== undefined) {
      this.refuse(socket, ErrorCode.InvalidInput, `payload ${problem}`, ack);
      return;
    }
    const name = typeof event === "string" ? event : "";
    const schema = Object.hasOwn(ClientEventSchemas, name)
      ? ClientEventSchemas[name as keyof typeof ClientEventSchemas]
      : undefined;
    if (!schema && !handlers.has(name)) {
      this.refuse(socket, ErrorCode.InvalidInput, `unknown event "${String(event).slice(0, 64)}"`, ack);
      return;
    }
    if (schema && !schema.safeParse(args).success) {
      this.refuse(socket, ErrorCode.InvalidInput, `invalid arguments for "${name}"`, ack);
      return;
    }
    consume(this.limiters, socket)
      .then(
        async () => {
          if (schema) {
            const builtin = Object.hasOwn(this.builtins, name) ? this.builtins[name] : undefined;
            if (builtin) return void builtin.apply(socket, packet.slice(1));
            return next();
          }
          const valid = await handlers.validate(name, args);
          if (!valid.ok) return this.refuse(socket, ErrorCode.InvalidInput, valid.message, ack);
          const reply = await this.calls.run(socket, name, valid.value);
          if (reply) ack?.(reply);
        },
        () => this.refuse(socket, ErrorCode.RateLimited, "too many events", ack),
      )
      .catch((err: unknown) => {
        // Nothing a client sends may end the process: whatever escaped is logged, the call answered.
        logger.error({ err: (err as Error)?.message, socket: socket.id }, "an inbound event failed");
        ack?.(refused(ErrorCode.Internal, "Internal error."));
      });
  }
}

/**
 * Socket.IO's `run`, once checked that its `dispatch` still runs every inbound event through
 * it: throws at start if an upgrade of Socket.IO changed either, so no socket goes unguarded.
 */
export function assertRunDispatch(proto: object = Socket.prototype): Run {
  const { run, dispatch } = proto as { run?: unknown; dispatch?: unknown };
  if (typeof run !== "function" || run.length !== 2 || typeof dispatch !== "function") {
    throw new Error("Socket.IO's Socket has no run(event, fn) or dispatch: this version cannot be guarded");
  }
  if (!/\bthis\.run\(/.test(Function.prototype.toString.call(dispatch))) {
    throw new Error("Socket.IO's dispatch no longer calls this.run: this version cannot be guarded");
  }
  return run as Run;
}

/**
 * An acknowledgement that never throws: Socket.IO encodes the reply inside the
 * call, and a reply it cannot encode (a BigInt, a structure deep enough to
 * overflow its recursive `hasBinary`) would throw into whatever called it — a
 * listener on the next tick, or a promise nobody catches: either ends the
 * process. Such a reply is logged and answered INTERNAL instead (Socket.IO
 * marks an acknowledgement sent only once its packet was encoded).
 */
function safeAck(ack: Ack, socket: TetherSocket, logger: Logger): Ack {
  return (reply) => {
    try {
      ack(reply);
    } catch (err) {
      logger.error({ err: (err as Error)?.message, socket: socket.id }, "an acknowledgement could not be sent");
      try {
        ack(refused(ErrorCode.Internal, "Internal error.") satisfies EventAck);
      } catch {
        // The connection itself failed: nothing left to answer.
      }
    }
  };
}

/** One point from the socket's budget, then one from its session's. */
async function consume(limiters: EventLimiters, socket: TetherSocket): Promise<void> {
  await limiters.socket.consume(socket.id);
  await limiters.session.consume(socket.data.sid);
}

/**
 * Counts sockets per session and per user on this instance, and refuses past
 * either limit: a user's many logins cannot multiply the per-session bound
 * without end.
 */
export class SocketCounter {
  private readonly sessions = new Map<string, number>();
  private readonly users = new Map<string, number>();
  private readonly part: number;

  constructor(
    private readonly max: { perSession: number; perUser: number },
    private readonly lifetime: SocketLifetime,
  ) {
    this.part = lifetime.part({
      release: ({ data: { sid, userId } }) => {
        count(this.sessions, sid, -1);
        count(this.users, userId, -1);
      },
    });
  }

  /**
   * Call in the handshake; throws RATE_LIMITED when the session or the user
   * already holds its most sockets here. The slots are freed on every way out:
   * disconnect, a refused handshake, or a client that left before it connected.
   */
  admit(socket: TetherSocket): void {
    const { sid, userId } = socket.data;
    if ((this.sessions.get(sid) ?? 0) >= this.max.perSession)
      throw new TetherError(ErrorCode.RateLimited, "Too many connections for this session.");
    if ((this.users.get(userId) ?? 0) >= this.max.perUser)
      throw new TetherError(ErrorCode.RateLimited, "Too many connections for this user.");
    count(this.sessions, sid, +1);
    count(this.users, userId, +1);
    this.lifetime.took(socket, this.part);
  }
}

function count(counts: Map<string, number>, key: string, delta: 1 | -1): void {
  const n = (counts.get(key) ?? 0) + delta;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}

/** The event limiters, in process: a socket lives on one instance, and the session limit is per instance. */
function eventLimiters(limits: SocketLimits): EventLimiters {
  return {
    socket: new RateLimiterMemory({ keyPrefix: "socket-events", points: limits.eventsPerSecond, duration: 1 }),
    session: new RateLimiterMemory({ keyPrefix: "session-events", points: limits.sessionEventsPerSecond, duration: 1 }),
    refused: new RateLimiterMemory({
      keyPrefix: "refused-events",
      points: limits.refusedEvents.points,
      duration: Math.max(1, Math.ceil(limits.refusedEvents.durationMs / 1000)),
    }),
  };
}
