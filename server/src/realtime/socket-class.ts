import { Namespace, Socket } from "socket.io";
import type { TetherSocket } from "./types.js";

/** The delivery gate's slot on each socket (see `Delivery`): declared by the socket class below. */
export const GATE_SLOT: unique symbol = Symbol("tether.gate");

/**
 * Socket.IO's private runner of a socket's middlewares for one inbound event, `run(event, fn)`,
 * as the inbound guard replaces it (see `EventGuard`).
 */
export type Run = (this: TetherSocket, event: unknown[], fn: (err?: Error) => void) => void;

type SocketFactory = (client: unknown, auth: Record<string, unknown>) => Promise<Socket>;

/**
 * Has `nsp` make its sockets from a subclass of Socket.IO's `Socket` that carries Tether's
 * per-socket state from its construction: the guarded `run` on its prototype, and the
 * delivery gate's slot a declared field. Properties given to a Socket.IO socket after it was
 * made (as an own `run` and the gate were) cost each socket an out-of-object property array,
 * 40 B per idle socket. Socket.IO's own prototype is left as it is (other servers in the
 * process are untouched), and every socket of the namespace shares the subclass's one shape.
 * Namespaces a host adds to Tether's server keep Socket.IO's own sockets.
 *
 * The namespace's `_createSocket` is replaced on this namespace only. Socket.IO 4's makes a
 * `new Socket(nsp, client, auth)`, or restores a session when `connectionStateRecovery` is on,
 * which Tether never sets (its own recovery is the streams'); `assertSocketFactory` checks
 * both at start, so an upgrade that changed them fails loudly rather than mid-handshake.
 */
export function makeSocketsGuarded(nsp: Namespace, run: Run): void {
  assertSocketFactory(nsp);
  class GuardedSocket extends Socket {
    [GATE_SLOT]: unknown = undefined;
  }
  Object.defineProperty(GuardedSocket.prototype, "run", { value: run, writable: true, configurable: true });
  const factory: SocketFactory = async (client, auth) =>
    new GuardedSocket(nsp, client as ConstructorParameters<typeof Socket>[1], auth);
  (nsp as unknown as { _createSocket: SocketFactory })._createSocket = factory;
}

/** Throws unless `nsp`'s socket factory is the one `makeSocketsGuarded` replaces. */
export function assertSocketFactory(nsp: object, proto: object = Namespace.prototype): void {
  const { _createSocket: factory } = proto as { _createSocket?: unknown };
  if (typeof factory !== "function" || !/\bnew \S*Socket\(this, client, auth\)/.test(String(factory))) {
    throw new Error(
      "Socket.IO's Namespace no longer makes its sockets in _createSocket: this version cannot be guarded",
    );
  }
  const opts = (nsp as { server?: { opts?: { connectionStateRecovery?: unknown } } }).server?.opts;
  if (opts?.connectionStateRecovery) {
    throw new Error(
      "Tether's Socket.IO server must not set connectionStateRecovery (Tether recovers from its streams)",
    );
  }
}
