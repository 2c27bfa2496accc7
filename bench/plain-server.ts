/**
 * The baseline: a plain Socket.IO server with no auth, in its own process,
 * driven by the bench over IPC. Like Tether it sends `welcome` on connect, so
 * a client measures the same round trips on both.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { serve } from "./lib/ipc.js";
import { benchPayload, type PlainProtocol } from "./lib/protocol.js";

const http = createServer();
const io = new Server(http);
io.on("connection", (socket) => {
  socket.emit("welcome", { instance: "plain", offset: "0-0" });
});

await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
process.once("SIGTERM", () => process.exit(0));

serve<PlainProtocol>(
  {
    emit: ({ event, count }) => {
      const [socket] = io.sockets.sockets.values();
      if (!socket) throw new Error("no connected socket to emit to");
      // The same payload Tether delivers: the data plus an offset of the same shape.
      const base = Date.now();
      for (let seq = 0; seq < count; seq++) socket.emit(event, { ...benchPayload(seq), offset: `${base}-${seq}` });
      return { emitted: count };
    },
  },
  { port: (http.address() as AddressInfo).port },
);
