import type { ClientToServerEvents, InterServerEvents, ServerToClientEvents } from "@tether/shared";
import type { Server, Socket } from "socket.io";
import type { SocketIdentity } from "../auth/service.js";

/** What the handshake proved, kept on each socket. */
export type SocketData = SocketIdentity;

export type TetherServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type TetherSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
