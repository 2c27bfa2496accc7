import WebSocket from "ws";
import { nextClientAddress } from "./address.js";
import { waitFor } from "./wait.js";

/**
 * A raw Engine.IO v4 WebSocket, below socket.io-client: for sending packets a
 * well-behaved client never would. Frames are Engine.IO packets ("4" + a
 * Socket.IO packet for messages); pings are answered.
 */
export interface RawSocket {
  readonly frames: string[];
  send(frame: string): void;
  /** Resolves when the server closed the connection. */
  readonly closed: Promise<void>;
  isOpen(): boolean;
  close(): void;
}

export async function openRaw(
  baseUrl: string,
  query = "EIO=4&transport=websocket",
  headers: Record<string, string> = {},
  localAddress: string = nextClientAddress(),
): Promise<RawSocket> {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/socket.io/?${query}`, { headers, localAddress });
  const frames: string[] = [];
  const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
  ws.on("error", () => {});
  ws.on("message", (data) => {
    const frame = data.toString();
    if (frame === "2") ws.send("3");
    frames.push(frame);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once("error", reject);
  });
  const opened = waitFor("the Engine.IO open packet", () => frames.some((f) => f.startsWith("0")));
  await Promise.race([opened, closed.then(() => Promise.reject(new Error("closed before the open packet")))]);
  return {
    frames,
    send: (frame) => ws.send(frame),
    closed,
    isOpen: () => ws.readyState === WebSocket.OPEN,
    close: () => ws.close(),
  };
}

/** Opens a raw socket and completes the Socket.IO handshake with `auth`; resolves once welcomed. */
export async function openRawConnected(baseUrl: string, auth: object): Promise<RawSocket> {
  const raw = await openRaw(baseUrl);
  raw.send(`40${JSON.stringify(auth)}`);
  await waitFor("the Socket.IO connect and welcome", () => raw.frames.some((f) => f.startsWith('42["welcome"')));
  return raw;
}
