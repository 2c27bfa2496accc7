import type { ClientToServerEvents, InterServerEvents, ServerToClientEvents } from "@tether/shared";
import type { Server, Socket } from "socket.io";
import type { SocketIdentity } from "../auth/service.js";

/** What the handshake proved, kept on each socket. */
export type SocketData = SocketIdentity;

export type TetherServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type TetherSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

/**
 * Tether's own client events (`ClientEvent`), by name: one listener each for every
 * socket, called by the inbound guard with the socket as `this` once the event is
 * validated and counted (no listener is registered per socket).
 */
export type BuiltinListeners = Readonly<Record<string, (this: TetherSocket, ...args: unknown[]) => void>>;
