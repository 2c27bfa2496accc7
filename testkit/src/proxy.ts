import { createConnection, createServer, type Socket } from "node:net";
import { freePort } from "./ports.js";

/**
 * A small TCP load balancer for fault injection: round-robin over backends,
 * skipping dead ones; it can cut every connection and refuse new ones. It keeps
 * each client's (loopback) source address on its upstream connection.
 */
export interface TestProxy {
  readonly url: string;
  readonly port: number;
  /** Backends as `port` numbers on 127.0.0.1; replace at will. */
  backends: number[];
  /** Destroys every open connection. */
  cut(): void;
  /**
   * Kills every open WebSocket silently: the server side is closed, the client side
   * stays open and hears nothing, as after a network change nobody noticed.
   */
  blackholeWebSockets(): number;
  /** While true, new connections are closed at once. */
  refusing: boolean;
  readonly openConnections: number;
  close(): Promise<void>;
}

export async function startProxy(backends: number[]): Promise<TestProxy> {
  const port = await freePort();
  const open = new Set<Socket>();
  /** Client sides of connections that carry a WebSocket, by their upstream. */
  const webSockets = new Map<Socket, Socket>();
  /** Client sides left open and deaf by blackholeWebSockets. */
  const deaf = new Set<Socket>();
  let next = 0;

  const dial = (client: Socket, tried: number, state: TestProxy) => {
    if (tried >= state.backends.length) return void client.destroy();
    const target = state.backends[next++ % state.backends.length];
    // Transparent, like an LB that keeps the client's source address (HAProxy `usesrc clientip`):
    // each client keeps its own address upstream, so per-address limits see clients, not the proxy.
    const upstream = createConnection({ host: "127.0.0.1", port: target ?? 0, localAddress: client.remoteAddress });
    // Only fires before "connect" (the listener is removed then): try the next backend.
    upstream.once("error", () => {
      upstream.destroy();
      dial(client, tried + 1, state);
    });
    upstream.once("connect", () => {
      upstream.removeAllListeners("error");
      open.add(upstream);
      client.pipe(upstream).pipe(client);
      const close = () => {
        client.destroy();
        upstream.destroy();
        open.delete(client);
        open.delete(upstream);
      };
      client.on("error", close).on("close", close);
      upstream.on("error", close).on("close", close);
      client.once("data", (chunk: Buffer) => {
        if (/^GET [^\r\n]*transport=websocket/.test(chunk.toString("latin1", 0, 512))) webSockets.set(upstream, client);
      });
      upstream.once("close", () => webSockets.delete(upstream));
      client.resume();
    });
  };

  const state: TestProxy = {
    url: `http://127.0.0.1:${port}`,
    port,
    backends,
    refusing: false,
    get openConnections() {
      return open.size / 2;
    },
    cut() {
      for (const socket of open) socket.destroy();
      open.clear();
      for (const socket of deaf) socket.destroy();
      deaf.clear();
    },
    blackholeWebSockets() {
      const count = webSockets.size;
      for (const [upstream, client] of webSockets) {
        client
          .removeAllListeners("close")
          .removeAllListeners("error")
          .on("error", () => client.destroy());
        client.unpipe(upstream);
        client.pause();
        open.delete(client);
        deaf.add(client);
        upstream.removeAllListeners("close").on("error", () => undefined);
        upstream.unpipe(client);
        upstream.destroy();
        open.delete(upstream);
      }
      webSockets.clear();
      return count;
    },
    close: () =>
      new Promise<void>((resolve) => {
        state.cut();
        server.close(() => resolve());
      }),
  };

  const server = createServer({ pauseOnConnect: true }, (client) => {
    client.on("error", () => client.destroy());
    if (state.refusing) return void client.destroy();
    open.add(client);
    dial(client, 0, state);
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", () => resolve()));
  return state;
}
