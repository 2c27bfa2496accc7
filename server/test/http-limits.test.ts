import { connect, type Socket } from "node:net";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectionCeiling } from "../src/http/connection-gate.js";

/** A raw TCP connection to the instance that has written `bytes` (and then goes quiet). */
async function openRaw(port: number, bytes = ""): Promise<Socket> {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => {});
  socket.on("data", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  if (bytes !== "") socket.write(bytes);
  return socket;
}

const isClosed = (socket: Socket) => socket.closed;

/**
 * Slowloris: half-open connections held on an instance reached without the load
 * balancer. Node's defaults kept 3,000 of them open for over a minute.
 */
describe("HTTP server limits on an instance reached directly", () => {
  const opened: Socket[] = [];
  let instance: TestInstance | undefined;
  afterAll(async () => {
    for (const socket of opened) socket.destroy();
    await instance?.stop();
  });

  describe("timeouts", () => {
    beforeAll(async () => {
      instance = await startInstance({
        TETHER_HTTP_HEADERS_TIMEOUT: "1s",
        TETHER_HTTP_REQUEST_TIMEOUT: "2s",
        TETHER_HTTP_KEEP_ALIVE_TIMEOUT: "500ms",
      });
    });

    it("closes connections that never finish their headers, or say nothing at all, after the headers timeout", async () => {
      const port = instance?.port ?? 0;
      const slow = await Promise.all(
        Array.from({ length: 50 }, (_, i) => openRaw(port, i % 2 === 0 ? "GET /healthz HTTP/1.1\r\nHost: x\r\n" : "")),
      );
      opened.push(...slow);
      await waitFor("every half-open connection closed", () => slow.every(isClosed), { timeoutMs: 8_000 });
      expect((await fetch(`${instance?.url}/healthz`)).ok).toBe(true);
    });

    it("closes a request whose body never finishes, after the request timeout", async () => {
      const socket = await openRaw(
        instance?.port ?? 0,
        'POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"apiKey":',
      );
      opened.push(socket);
      await waitFor("the slow body's connection closed", () => isClosed(socket), { timeoutMs: 8_000 });
    });

    it("closes an idle keep-alive connection after the keep-alive timeout", async () => {
      const socket = await openRaw(instance?.port ?? 0, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      opened.push(socket);
      let response = "";
      socket.on("data", (chunk: Buffer) => {
        response += chunk.toString();
      });
      await waitFor("the response", () => response.startsWith("HTTP/1.1 200"));
      expect(response).toMatch(/keep-alive/i);
      await waitFor("the idle connection closed", () => isClosed(socket), { timeoutMs: 4_000 });
    });
  });

  describe("connection cap", () => {
    let capped: TestInstance | undefined;
    afterAll(async () => {
      await capped?.stop();
    });

    // Past the cap itself connections are answered 503 (server/test/security/connection-cap.test.ts);
    // past the hard ceiling above it, the last resort against running out of descriptors, they are closed.
    it("closes connections beyond the hard ceiling above TETHER_HTTP_MAX_CONNECTIONS at once, and serves again when they go", async () => {
      capped = await startInstance({ TETHER_HTTP_MAX_CONNECTIONS: "10", TETHER_HTTP_HEADERS_TIMEOUT: "30s" });
      const port = capped.port;
      const ceiling = connectionCeiling(10);
      const sockets: Socket[] = [];
      for (let i = 0; i < ceiling + 10; i++) sockets.push(await openRaw(port));
      opened.push(...sockets);
      // Well before the 30 s headers timeout: only the ceiling closes them.
      await waitFor("connections beyond the ceiling closed", () => sockets.filter(isClosed).length >= 10, {
        timeoutMs: 3_000,
      });
      expect(sockets.filter((socket) => !isClosed(socket)).length).toBeLessThanOrEqual(ceiling);
      for (const socket of sockets) socket.destroy();
      const url = capped.url;
      await waitFor("the instance serving again", async () => (await fetch(`${url}/healthz`)).ok);
    });
  });
});
