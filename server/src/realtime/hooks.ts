import type { Logger } from "pino";
import type { TetherSocket } from "./types.js";

/** Who a connection is, as the host's hooks see it. The session id is never exposed: it is a credential. */
export interface ConnectionIdentity {
  /** The user the socket's login session belongs to. */
  userId: string;
  /** This connection's id (the Socket.IO socket id): differs per tab and per reconnect. */
  socketId: string;
  /** The instance the socket is connected to. */
  instance: string;
}

/** The host's connection hooks (see `TetherOptions.onConnect` and `onDisconnect`). */
export interface ConnectionHooks {
  onConnect?: (identity: ConnectionIdentity, socket: TetherSocket) => void | Promise<void>;
  onDisconnect?: (identity: ConnectionIdentity, reason: string) => void | Promise<void>;
}

/**
 * Runs the host's hooks for one connected socket: `onConnect` now, `onDisconnect` when it
 * goes. A hook that throws or rejects is logged and changes nothing (the socket stays).
 */
export function runConnectionHooks(
  socket: TetherSocket,
  hooks: ConnectionHooks,
  instance: string,
  logger: Logger,
): void {
  if (!hooks.onConnect && !hooks.onDisconnect) return;
  const identity: ConnectionIdentity = { userId: socket.data.userId, socketId: socket.id, instance };
  const guard = (name: string, run: () => void | Promise<void>) => {
    try {
      Promise.resolve(run()).catch((err: unknown) =>
        logger.error({ err, socket: socket.id }, `the ${name} hook failed`),
      );
    } catch (err) {
      logger.error({ err, socket: socket.id }, `the ${name} hook failed`);
    }
  };
  const { onConnect, onDisconnect } = hooks;
  if (onDisconnect) socket.once("disconnect", (reason) => guard("onDisconnect", () => onDisconnect(identity, reason)));
  if (onConnect) guard("onConnect", () => onConnect(identity, socket));
}
