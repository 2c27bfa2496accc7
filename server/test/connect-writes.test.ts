import { createServer, type Server } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import { connectRaw, post, wsToken } from "@tether/testkit/http";
import { waitFor } from "@tether/testkit/wait";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tether } from "../src/index.js";
import { embeddedTether } from "./fixtures/in-process.js";
import { recordWrites } from "./fixtures/socket-writes.js";

const API_KEY = "connect-writes-api-key-0123456789";
const HANDSHAKE_PATH = "/socket.io/?EIO=4&transport=websocket";

let tether: Tether;
let http: Server;
let url: string;
/** What each server-side connection handed the kernel, one entry per `write` or `writev` system call, in order. */
const connections: string[][] = [];

beforeAll(async () => {
  tether = await embeddedTether(API_KEY);
  const app = express();
  app.use(tether.router);
  http = createServer(app);
  http.on("connection", (socket: Socket) => connections.push(recordWrites(socket)));
  tether.attach(http);
  await new Promise<void>((done) => http.listen(0, "127.0.0.1", done));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await tether?.close();
  await new Promise<void>((done) => http?.close(() => done()));
});

/** A raw upgrade request; resolves with what the server sent once `until` matches it or the connection ended. */
function upgrade(
  headers: Record<string, string>,
  until: (received: string) => boolean,
  path = HANDSHAKE_PATH,
): Promise<string> {
  const { port } = http.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let received = "";
    const done = () => {
      socket.destroy();
      resolve(received);
    };
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
      if (until(received)) done();
    });
    socket.on("end", done);
    socket.on("error", reject);
    const lines = Object.entries({
      Host: `127.0.0.1:${port}`,
      Connection: "Upgrade",
      Upgrade: "websocket",
      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version": "13",
      ...headers,
    }).map(([name, value]) => `${name}: ${value}`);
    socket.write([`GET ${path} HTTP/1.1`, ...lines, "", ""].join("\r\n"));
  });
}

/** A signed-in user's WS token. */
async function tokenFor(user: string): Promise<string> {
  const res = await post(`${url}/api/auth/login`, { apiKey: API_KEY, user });
  const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  return wsToken(url, { cookie });
}

/** The writes of the connection opened next, as they stand once it has sent `count` of them. */
async function writesOfNext<T>(open: () => Promise<T>, count: number): Promise<{ opened: T; writes: string[] }> {
  const index = connections.length;
  const opened = await open();
  await waitFor(`${count} writes`, () => (connections[index]?.length ?? 0) >= count);
  return { opened, writes: [...(connections[index] ?? [])] };
}

describe("an accepted WebSocket upgrade's first writes", () => {
  it("the 101 and Engine.IO's open packet leave the server in one write", async () => {
    const { opened: received, writes } = await writesOfNext(() => upgrade({}, (text) => text.includes('0{"sid":')), 1);
    expect(received.startsWith("HTTP/1.1 101 Switching Protocols\r\n")).toBe(true);
    // One write carried both: all the client received (nothing more comes before its Socket.IO CONNECT).
    expect(writes).toEqual([received]);
  });

  it("ws's own refusal of a request Engine.IO accepted still reaches the client", async () => {
    // Engine.IO accepts the request (origin, transport); ws then refuses a version it does not speak.
    const received = await upgrade({ "Sec-WebSocket-Version": "99" }, () => false);
    expect(received.startsWith("HTTP/1.1 400 Bad Request\r\n")).toBe(true);
  });

  it("an Engine.IO v3 client, refused after the 101, sees its connection end, and the next one is served", async () => {
    // Engine.IO refuses the version only once ws has written the 101: the destroy drops what was corked.
    const received = await upgrade({}, () => false, "/socket.io/?EIO=3&transport=websocket");
    expect(received).not.toContain('0{"sid":');
    const next = await upgrade({}, (text) => text.includes('0{"sid":'));
    expect(next).toContain('0{"sid":');
  });

  it("an upgrade Engine.IO refuses (another origin) is answered as before", async () => {
    const received = await upgrade({ Origin: "https://elsewhere.example" }, () => false);
    expect(received.startsWith("HTTP/1.1 400 Bad Request\r\n")).toBe(true);
    expect(received).toContain("ORIGIN_FORBIDDEN");
  });
});

describe("a handshake's CONNECT ack and its welcome", () => {
  it("leave in one write, ack first, on a first connect and on a reconnect by ticket", async () => {
    const token = await tokenFor("alice");
    const first = await writesOfNext(() => connectRaw(url, { token }), 2);
    const ticket = first.opened.welcome.ticket;
    first.opened.close();
    const again = await writesOfNext(() => connectRaw(url, { ticket }), 2);
    again.opened.close();
    for (const { writes } of [first, again]) {
      // The upgrade's write, then one with both frames: the ack ("40…") before `welcome` ("42["welcome",…").
      expect(writes).toHaveLength(2);
      const frames = writes[1] ?? "";
      expect(frames).toMatch(/40\{"sid":/);
      expect(frames.indexOf('40{"sid":')).toBeLessThan(frames.indexOf('42["welcome",'));
    }
    expect(again.opened.welcome.ticket).not.toBe(ticket);
  });

  it("the connection is free again after them: an event and its ack go and come back", async () => {
    const token = await tokenFor("bob");
    const { opened: socket } = await writesOfNext(() => connectRaw(url, { token }), 2);
    expect(await socket.timeout(5_000).emitWithAck("echo", { n: 1 })).toEqual({ n: 1 });
    socket.close();
  });
});
