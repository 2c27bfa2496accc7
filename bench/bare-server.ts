/**
 * The floor: bare Socket.IO 4.8 in its own process, no auth, no adapter, no
 * session: what a socket costs Socket.IO itself. Like the others it sends
 * `welcome` on connect. The memory scenario's second baseline.
 *
 * @example
 * node --import tsx bench/bare-server.ts '{"port":4000,"instance":"b1"}'
 */
import { createServer } from "node:http";
import { Server } from "socket.io";

const options = JSON.parse(process.argv[2] ?? "{}") as { port: number; instance: string };
const http = createServer((req, res) => {
  res.statusCode = req.url === "/healthz" ? 200 : 404;
  res.end();
});
const io = new Server(http);
io.on("connection", (socket) => {
  socket.emit("welcome", { instance: options.instance, offset: "0-0" });
});

await new Promise<void>((resolve) => http.listen(options.port, "127.0.0.1", resolve));
process.once("SIGTERM", () => process.exit(0));
process.send?.({ ready: true, port: options.port });
