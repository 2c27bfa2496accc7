import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { waitFor } from "@tether/testkit/wait";
import { Server } from "socket.io";
import { type Socket as ClientSocket, io as connect } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ConnectionGate, gateConnections } from "../src/http/connection-gate.js";

// The gate on a real HTTP server with real Socket.IO in front of real clients: what it keeps per
// connection, and that its counts follow connections that close, upgraded or not.
let http: HttpServer;
let io: Server;
let gate: ConnectionGate;
let url: string;
const clients: ClientSocket[] = [];

beforeAll(async () => {
  http = createServer((_req, res) => res.end("ok"));
  gate = gateConnections(http, { maxConnections: 100, maxConnectionsPerIp: 50 });
  io = new Server(http);
  await new Promise<void>((done) => http.listen(0, "127.0.0.1", done));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const c of clients) c.close();
  await io.close();
});

async function webSocket(): Promise<ClientSocket> {
  const client = connect(url, { transports: ["websocket"], reconnection: false, forceNew: true });
  clients.push(client);
  await waitFor("connected", () => client.connected);
  return client;
}

describe("the connection gate", () => {
  it("adds no close listener to an upgraded connection: Engine.IO's and ws's are its only ones", async () => {
    const client = await webSocket();
    const server = io.sockets.sockets.get(client.id ?? "");
    const tcp = server?.conn.request.socket;
    expect(tcp?.listenerCount("close")).toBe(2);
    expect(gate.upgraded).toBe(1);
    expect(gate.openFrom("127.0.0.1")).toBe(1);
    client.close();
    await waitFor("its counts went", () => gate.open === 0 && gate.upgraded === 0);
    expect(gate.openFrom("127.0.0.1")).toBe(0);
  });

  it("counts many upgraded and keep-alive connections, repeated, back to zero when they close", async () => {
    for (let round = 0; round < 3; round++) {
      const sockets = await Promise.all(Array.from({ length: 10 }, () => webSocket()));
      const replies = await Promise.all(Array.from({ length: 5 }, () => fetch(`${url}/x`).then((r) => r.text())));
      expect(replies).toEqual(Array(5).fill("ok"));
      expect(gate.upgraded).toBe(10);
      expect(gate.open).toBeGreaterThanOrEqual(10);
      expect(gate.openFrom("127.0.0.1")).toBe(gate.open);
      for (const s of sockets) s.close();
      await waitFor("the WebSockets' counts went", () => gate.upgraded === 0);
    }
    // The keep-alive connections of fetch: closed by the server, as its keep-alive timeout would.
    http.closeIdleConnections();
    await waitFor("every connection's count went", () => gate.open === 0 && gate.openFrom("127.0.0.1") === 0);
  });
});
