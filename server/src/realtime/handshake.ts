import { ErrorCode } from "@tether/shared";
import type { Logger } from "pino";
import { sessionRoom } from "../auth/keys.js";
import type { AuthService, SocketIdentity } from "../auth/service.js";
import { TetherError, toTetherError } from "../errors.js";
import { serializeError } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import type { Delivery } from "./delivery.js";
import type { SessionSocketCounter } from "./guards.js";
import { handshakeRefused } from "./socket-lifetime.js";
import { roomStream, userStream } from "./streams.js";
import type { TetherSocket } from "./types.js";

/** The rooms with history a user's sockets join at connect (and recover on reconnect). */
export type RoomsOf = (identity: SocketIdentity) => string[] | Promise<string[]>;

/** The offsets the client sent, by stream; unvalidated (delivery decides what is usable). */
function requestedOffsets(auth: unknown, userId: string, rooms: string[]): Map<string, unknown> {
  const sent = (typeof auth === "object" && auth !== null ? auth : {}) as { offset?: unknown; rooms?: unknown };
  const roomOffsets = (typeof sent.rooms === "object" && sent.rooms !== null ? sent.rooms : {}) as Record<
    string,
    unknown
  >;
  const requested = new Map<string, unknown>([[userStream(userId), sent.offset]]);
  for (const room of rooms)
    requested.set(roomStream(room), Object.hasOwn(roomOffsets, room) ? roomOffsets[room] : undefined);
  return requested;
}

/**
 * The one handshake middleware: consumes the token (one store round trip that
 * also reads the session), notes where each of the socket's streams starts,
 * then joins its session, user and room rooms. Refusals carry
 * `{ code, retryable }` in `connect_error.data`.
 */
export function handshakeMiddleware(deps: {
  auth: AuthService;
  delivery: Delivery;
  roomsOf: RoomsOf;
  perSession: SessionSocketCounter;
  metrics: Metrics;
  isDraining: () => boolean;
  logger: Logger;
}) {
  const { auth, delivery, roomsOf, perSession, metrics, logger } = deps;
  return async (socket: TetherSocket, next: (err?: Error) => void): Promise<void> => {
    try {
      // Before the token is spent: a draining instance sends the client elsewhere, token intact.
      if (deps.isDraining()) throw new TetherError(ErrorCode.Unavailable, "This instance is shutting down.");
      const identity = await auth.consumeToken(socket.handshake.auth, socket.request);
      socket.data = identity;
      const requested = requestedOffsets(socket.handshake.auth, identity.userId, await roomsOf(identity));
      // Before joining: from here on the socket's live events are held until it has caught up.
      delivery.prepare(socket, requested);
      socket.join([sessionRoom(identity.sid), ...requested.keys()]);
      perSession.admit(socket);
      metrics.handshakes.inc({ result: "ok" });
      metrics.tokens.inc({ result: "consumed" });
      if (requested.get(userStream(identity.userId)) !== undefined) metrics.reconnects.inc();
      next();
    } catch (err) {
      // Whatever the handshake took (a slot, a delivery gate) is given back: this socket never connects.
      handshakeRefused(socket);
      const error = toTetherError(err);
      metrics.handshakes.inc({ result: error.code });
      if (error.code === ErrorCode.TokenInvalid) metrics.tokens.inc({ result: "refused" });
      if (error.code === ErrorCode.Internal) logger.error({ err: serializeError(err) }, "handshake failed");
      else logger.debug({ code: error.code }, "handshake refused");
      next(error.toHandshakeError());
    }
  };
}
