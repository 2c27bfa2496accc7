import type { Logger } from "pino";
import { sessionRoom, tagOf, userRoom } from "../auth/keys.js";
import type { AuthService } from "../auth/service.js";
import { toTetherError } from "../errors.js";
import type { TetherSocket } from "./types.js";

/**
 * The one handshake middleware: consumes the token (one store round trip that
 * also reads the session), then joins the socket to its session and user rooms.
 * Refusals carry `{ code, retryable }` in `connect_error.data`.
 */
export function handshakeMiddleware(auth: AuthService, logger: Logger) {
  return async (socket: TetherSocket, next: (err?: Error) => void): Promise<void> => {
    try {
      const identity = await auth.consumeToken(socket.handshake.auth);
      socket.data = identity;
      socket.join([sessionRoom(identity.sid), userRoom(identity.userId)]);
      next();
    } catch (err) {
      const error = toTetherError(err);
      logger.debug({ code: error.code, socket: socket.id }, "handshake refused");
      if (error.code === "INTERNAL") logger.error({ err }, "handshake failed");
      next(error.toHandshakeError());
    }
  };
}

/** For logs: which session a socket belongs to, without the session id. */
export const sessionTag = (socket: TetherSocket) => tagOf(socket.data.sid);
