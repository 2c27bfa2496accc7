import { createServer, type Server } from "node:net";

/**
 * HAProxy's agent check: a TCP port that answers one line per connection
 * (`up 100%`, `up 30%`, `drain`) and closes. The load balancer shifts new
 * connections away from a busy instance by its weight, without marking it
 * down: in a storm every instance is busy, and none must fail its health check.
 * `host` is `TETHER_AGENT_HOST` (127.0.0.1 by default), not the service's `HOST`:
 * the port need not answer outside the load balancer's network.
 */
export function startAgent(port: number, host: string, status: () => string): Promise<Server> {
  const server = createServer((socket) => {
    socket.on("error", () => {});
    socket.end(`${status()}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
