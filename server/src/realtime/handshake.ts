import type { IncomingMessage } from "node:http";
import { ErrorCode, type HandshakeAuth, HandshakeAuthSchema, RoomNameSchema, ServerEvent } from "@tether/shared";
import type { Logger } from "pino";
import type { AuthService, SocketIdentity } from "../auth/service.js";
import { TetherError, toTetherError } from "../errors.js";
import { serializeError } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { Admission } from "./admission.js";
import type { SocketCapacity } from "./capacity.js";
import type { ConnectAttempts } from "./connect-attempts.js";
import { coalesceConnectFrames } from "./connect-frames.js";
import type { Delivery } from "./delivery.js";
import type { SocketCounter } from "./guards.js";
import type { LocalSessions } from "./local-sessions.js";
import type { Rooms } from "./rooms.js";
import type { SocketLifetime } from "./socket-lifetime.js";
import type { SocketTickets } from "./socket-tickets.js";
import { roomStream, userStream } from "./streams.js";
import type { TetherSocket } from "./types.js";
import { welcomePayload } from "./welcome.js";

/** The rooms with history a user's sockets join at connect (and recover on reconnect). */
export type RoomsOf = (identity: SocketIdentity) => string[] | Promise<string[]>;

/** The offsets the client sent, by stream; unvalidated (delivery decides what is usable). */
function requestedOffsets(auth: unknown, userId: string, rooms: string[]): Map<string, unknown> {
  const sent = (typeof auth === "object" && auth !== null ? auth : {}) as { offset?: unknown };
  const roomOffsets = sentRooms(auth);
  const requested = new Map<string, unknown>([[userStream(userId), sent.offset]]);
  for (const room of rooms)
    requested.set(roomStream(room), Object.hasOwn(roomOffsets, room) ? roomOffsets[room] : undefined);
  return requested;
}

/**
 * How long the client says it was without a connection (`auth.awayMs`), in
 * seconds, capped; undefined when absent or not a usable number (never a
 * reason to refuse the handshake: it only feeds a metric).
 */
function reportedAwaySeconds(auth: unknown): number | undefined {
  const sent = typeof auth === "object" && auth !== null ? (auth as { awayMs?: unknown }).awayMs : undefined;
  const parsed = HandshakeAuthSchema.shape.awayMs.safeParse(sent);
  return parsed.success && parsed.data !== undefined ? parsed.data / 1000 : undefined;
}

/** Tether's own handshake fields (every key of `HandshakeAuth`): read once, then dropped (see `forgetAuth`). */
const TETHER_AUTH_KEYS: ReadonlySet<string> = new Set(
  Object.keys({ token: 1, ticket: 1, cookie: 1, offset: 1, rooms: 1, awayMs: 1, recoveryInWelcome: 1 } satisfies Record<
    keyof HandshakeAuth,
    1
  >),
);
const NOTHING_KEPT: Readonly<Record<string, unknown>> = Object.freeze({});

/**
 * What the client sent is not kept on the socket for its life once the handshake has read it:
 * the spent credential (a token or a ticket: a credential in memory for no use), the offsets and
 * rooms it resumed from. Fields of the app's own are kept; with none, `socket.handshake.auth` is
 * one shared empty object (≈ 0.03 KiB less per idle socket, more for a resumed one).
 */
function forgetAuth(socket: TetherSocket): void {
  const sent = socket.handshake.auth as Record<string, unknown> | null;
  // On every handshake: nothing allocated unless the app sent fields of its own.
  let kept: Record<string, unknown> | undefined;
  if (typeof sent === "object" && sent !== null) {
    for (const key of Object.keys(sent)) {
      if (TETHER_AUTH_KEYS.has(key)) continue;
      kept ??= {};
      kept[key] = sent[key];
    }
  }
  socket.handshake.auth = kept ?? NOTHING_KEPT;
}

/**
 * Nor is the session cookie: Engine.IO keeps the handshake's request for the socket's life,
 * and with it the cookie (a credential, ≈ 0.1 KiB per browser socket) in both its parsed and
 * its raw headers. The identity it stood for is `socket.data`.
 */
function forgetCookie(req: IncomingMessage): void {
  if (req.headers.cookie === undefined) return;
  req.headers.cookie = undefined;
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    if (raw[i]?.length === 6 && raw[i]?.toLowerCase() === "cookie") raw.splice(i, 2);
  }
}

/** The rooms the client asks to keep (`auth.rooms`), with their offsets; unvalidated. */
function sentRooms(auth: unknown): Record<string, unknown> {
  const rooms = typeof auth === "object" && auth !== null ? (auth as { rooms?: unknown }).rooms : undefined;
  return (typeof rooms === "object" && rooms !== null && !Array.isArray(rooms) ? rooms : {}) as Record<string, unknown>;
}

/**
 * The one handshake middleware: consumes the token (one store round trip that
 * also reads the session), notes where each of the socket's streams starts,
 * then joins its session, user and room rooms. Rooms the client remembers
 * beyond `roomsOf`'s are checked again with `canJoin`. Refusals carry
 * `{ code, retryable }` in `connect_error.data`. Once delivery knows where the
 * socket's streams start, the socket gets `welcome`, with its first resume ticket.
 */
export function handshakeMiddleware(deps: {
  instanceId: string;
  auth: AuthService;
  delivery: Delivery;
  tickets: SocketTickets;
  roomsOf: RoomsOf;
  rooms: Rooms;
  socketCounts: SocketCounter;
  sessions: LocalSessions;
  admission: Admission;
  capacity: SocketCapacity;
  attempts: ConnectAttempts;
  lifetime: SocketLifetime;
  metrics: Metrics;
  isDraining: () => boolean;
  logger: Logger;
}) {
  const { auth, delivery, tickets, roomsOf, socketCounts, sessions, metrics, logger } = deps;
  return async (socket: TetherSocket, next: (err?: Error) => void): Promise<void> => {
    let ended: ((refused: boolean) => void) | undefined;
    try {
      // Cheapest first: this connection's own attempts, then the free checks of the address and the
      // credential's shape, and only then the instance-wide budget: a flood of bad handshakes from one
      // place is refused before it can spend what every other client needs.
      ended = deps.attempts.enter(socket);
      // Before the token is spent: a draining instance sends the client elsewhere, token intact.
      if (deps.isDraining()) throw new TetherError(ErrorCode.Unavailable, "This instance is shutting down.");
      await auth.screenSocket(socket.handshake.auth, socket.request);
      // Before any store work: an overloaded instance turns the client away with a spread retry hint.
      deps.admission.admit();
      // A full instance turns the client away with a retry hint (and the agent check sends newcomers elsewhere).
      deps.capacity.take(socket);
      const { identity, credential, userHead } = await auth.admitSocket(socket.handshake.auth, socket.request);
      socket.data = identity;
      forgetCookie(socket.request);
      // Rooms granted by roomsOf, plus those the client remembers (runtime joins) that canJoin still allows.
      const asked = Object.keys(sentRooms(socket.handshake.auth)).filter(
        (room) => RoomNameSchema.safeParse(room).success,
      );
      const admitted = await deps.rooms.admit(identity, await roomsOf(identity), asked);
      const requested = requestedOffsets(socket.handshake.auth, identity.userId, admitted.rooms);
      const userStreamName = userStream(identity.userId);
      // From here on the socket's live events are held until it has caught up.
      delivery.prepare(socket, requested, {
        heads: userHead ? new Map([[userStreamName, userHead]]) : undefined,
        onStart: (offsets, recoveries) =>
          socket.emit(
            ServerEvent.Welcome,
            welcomePayload(deps.instanceId, offsets, tickets.forWelcome(identity.sid), recoveries),
          ),
        recoveryInWelcome:
          (socket.handshake.auth as { recoveryInWelcome?: unknown } | null)?.recoveryInWelcome === true,
      });
      const hearsSessionEnd = sessions.add(socket, identity.sid);
      deps.rooms.prepare(socket, admitted);
      socketCounts.admit(socket);
      metrics.handshakes.inc({ result: "ok" });
      metrics.tokens.inc({ result: credential === "token" ? "consumed" : credential });
      if (requested.get(userStreamName) !== undefined) metrics.reconnects.inc();
      const away = reportedAwaySeconds(socket.handshake.auth);
      if (away !== undefined) metrics.reconnectDuration.observe({ credential }, away);
      forgetAuth(socket);
      // Connected only once a logout from now on reaches this socket (never rejects).
      await hearsSessionEnd;
      ended(false);
      // The client left while the handshake awaited the store: Socket.IO drops the socket without a
      // `disconnect`, so what the handshake took is given back here.
      if (socket.conn.readyState !== "open") deps.lifetime.leave(socket);
      else coalesceConnectFrames(socket);
      next();
    } catch (err) {
      // Whatever the handshake took (a slot, a delivery gate) is given back: this socket never connects.
      deps.lifetime.leave(socket);
      ended?.(true);
      const error = toTetherError(err);
      metrics.handshakes.inc({ result: error.code });
      if (error.code === ErrorCode.TokenInvalid) metrics.tokens.inc({ result: "refused" });
      if (error.code === ErrorCode.Internal) logger.error({ err: serializeError(err) }, "handshake failed");
      else logger.debug({ code: error.code }, "handshake refused");
      next(error.toHandshakeError());
    }
  };
}
