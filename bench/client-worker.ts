/**
 * A client process: opens and holds socket.io-client sockets (WebSocket only)
 * on the bench's command, so client CPU never lands in a server's numbers.
 */
import type { WsTokenResponse } from "@tether/shared";
import { io, type Socket } from "socket.io-client";
import { serve } from "./lib/ipc.js";
import type { WorkerProtocol } from "./lib/protocol.js";

const CONNECT_TIMEOUT_MS = 15_000;
const sockets: Socket[] = [];
let counting: { event: string; want: number; got: number; lastSeq: number; done: () => void } | undefined;
let arrived: Promise<void> = Promise.resolve();

/** Tether's hot path: a fresh single-use token from the session, per connect. */
async function fetchToken(url: string, cookie: string): Promise<string> {
  const res = await fetch(`${url}/api/auth/ws-token`, { method: "POST", headers: { cookie } });
  if (!res.ok) throw new Error(`ws-token: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as WsTokenResponse).token;
}

/** One connect: (Tether: token, then) handshake, then the server's `welcome`. */
async function connectOne(url: string, cookie: string | undefined): Promise<Socket> {
  const auth = cookie === undefined ? {} : { token: await fetchToken(url, cookie) };
  const socket = io(url, { transports: ["websocket"], reconnection: false, forceNew: true, auth });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no welcome in time")), CONNECT_TIMEOUT_MS);
      socket.once("welcome", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once("connect_error", (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  } catch (err) {
    socket.close();
    throw err;
  }
  return socket;
}

/** An error's message, with the transport's underlying error when socket.io-client wraps one. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { description?: { message?: unknown; error?: { message?: unknown } } }).description;
  const detail = cause?.error?.message ?? cause?.message;
  return detail === undefined ? err.message : `${err.message} (${String(detail)})`;
}

serve<WorkerProtocol>({
  connect: async ({ url, cookies, count, concurrency }) => {
    let next = 0;
    let failed = 0;
    let firstError: string | undefined;
    const lane = async () => {
      while (next < count) {
        const cookie = cookies.length === 0 ? undefined : cookies[next % cookies.length];
        next++;
        try {
          sockets.push(await connectOne(url, cookie));
        } catch (err) {
          failed++;
          firstError ??= describe(err);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
    return { opened: count - failed, failed, firstError };
  },
  close: () => {
    const closed = sockets.length;
    for (const socket of sockets.splice(0)) socket.close();
    return { closed };
  },
  arm: ({ event, count }) => {
    arrived = new Promise<void>((done) => {
      counting = { event, want: count, got: 0, lastSeq: -1, done };
    });
    for (const socket of sockets) {
      socket.off(event);
      socket.on(event, (payload: { seq: number }) => {
        if (!counting || counting.event !== event) return;
        counting.lastSeq = payload.seq;
        if (++counting.got === counting.want) counting.done();
      });
    }
    return { sockets: sockets.length };
  },
  received: async ({ timeoutMs }) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`only ${counting?.got} of ${counting?.want} events arrived`)),
        timeoutMs,
      );
    });
    await Promise.race([arrived, timeout]).finally(() => clearTimeout(timer));
    return { received: counting?.got ?? 0, lastSeq: counting?.lastSeq ?? -1 };
  },
});
