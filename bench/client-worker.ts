/**
 * A client process: opens and holds socket.io-client sockets (WebSocket only),
 * each bound to its user's own source address (127.0.0.2–250), on the bench's
 * command, so client CPU never lands in a server's numbers.
 *
 * A Tether client does what the SDK does: the server's resume ticket once, when it
 * has one; else, in cookie mode (a browser), the session cookie on the upgrade
 * (`auth.cookie`); else a fresh single-use token (`POST /api/auth/ws-token` with the
 * session cookie); `offset` of the last event seen; `retryAfterMs` honoured. A plain
 * client sends its session cookie on the WebSocket upgrade (Socket.IO's
 * express-session recipe).
 */
import { Agent, request } from "node:http";
import { io, type Socket } from "socket.io-client";
import { serve } from "./lib/ipc.js";
import {
  BENCH_EVENT,
  type ClientCounters,
  type ClientMode,
  type ClientSpec,
  type Target,
  type WorkerProtocol,
} from "./lib/protocol.js";

const CONNECT_TIMEOUT_MS = 20_000;
/** socket.io-client's reconnection defaults: 1 s doubling to 5 s, ±50 % jitter. */
const BACKOFF = { minMs: 1_000, maxMs: 5_000, jitter: 0.5 };
/** Non-retryable handshake refusals: the client stops (a browser would show the login page). */
const FATAL = new Set(["SESSION_EXPIRED", "ORIGIN_FORBIDDEN", "SESSION_REQUIRED"]);

interface Client {
  spec: ClientSpec;
  target: Target;
  mode: ClientMode;
  socket: Socket | undefined;
  instance: string | undefined;
  ticket: string | undefined;
  /** A cookie handshake was refused: tokens from now on (as the SDK). */
  cookieRefused: boolean;
  offset: string | undefined;
  closed: boolean;
  /** Storm bookkeeping: this client was on the killed instance; when it was welcomed again. */
  victim: boolean;
  welcomedAt: number;
  gaveUp: boolean;
}

const clients: Client[] = [];
const agents = new Map<string, Agent>();
let counters: ClientCounters = freshCounters();

function freshCounters(): ClientCounters {
  return {
    tokenRequests: 0,
    ticketHandshakes: 0,
    cookieHandshakes: 0,
    ticketsRefused: 0,
    ticketsOffered: 0,
    errors: {},
    received: 0,
  };
}

/** A keep-alive agent per source address: each user's browser reuses its connections. */
function agentFor(address: string): Agent {
  let agent = agents.get(address);
  if (!agent) {
    agent = new Agent({ keepAlive: true, localAddress: address, maxSockets: 4 });
    agents.set(address, agent);
  }
  return agent;
}

type PostResult = { status: number; headers: Record<string, string | string[] | undefined>; text: string };

/**
 * A POST from `address`: status, headers and body text. Sent again once when a reused
 * keep-alive connection turns out closed by the server (it timed out idle just as the
 * request went out), as browsers do and as Node's documentation advises.
 */
async function post(
  url: string,
  address: string,
  body: string | undefined,
  headers: Record<string, string> = {},
): Promise<PostResult> {
  try {
    return await postOnce(url, address, body, headers);
  } catch (err) {
    if (!(err as { reusedSocket?: boolean }).reusedSocket) throw err;
    return postOnce(url, address, body, headers);
  }
}

function postOnce(url: string, address: string, body: string | undefined, headers: Record<string, string>) {
  return new Promise<PostResult>((resolve, reject) => {
    const target = new URL(url);
    const all = { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) };
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: "POST",
        agent: agentFor(address),
        headers: { ...all, "content-length": String(body === undefined ? 0 : Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.setTimeout(CONNECT_TIMEOUT_MS, () => req.destroy(new Error("HTTP request timed out")));
    req.on("error", (err: NodeJS.ErrnoException) => {
      const stale = req.reusedSocket && (err.code === "ECONNRESET" || err.message === "socket hang up");
      reject(stale ? Object.assign(err, { reusedSocket: true }) : err);
    });
    req.end(body);
  });
}

/** How often one connect of the ramp is retried after an admission-control refusal. */
const MAX_ADMISSION_RETRIES = 10;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class Refused extends Error {
  constructor(
    readonly code: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(code);
  }
}

async function fetchToken(client: Client): Promise<string> {
  counters.tokenRequests++;
  const res = await post(`${client.target.url}/api/auth/ws-token`, client.spec.address, undefined, {
    cookie: client.spec.cookie,
  });
  if (res.status === 200) return (JSON.parse(res.text) as { token: string }).token;
  const code = /"code":"([A-Z_]+)"/.exec(res.text)?.[1] ?? `HTTP_${res.status}`;
  const retryAfter = Number(res.headers["retry-after"]);
  throw new Refused(code, Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined);
}

/** The handshake's `auth`: the ticket once if there is one, else the cookie (in cookie mode) or a fresh token; plus the last offset, and `recoveryInWelcome` as the SDK sends it. */
async function authFor(client: Client): Promise<Record<string, unknown>> {
  // As the SDK: a reconnect that missed nothing gets its `recovery` inside `welcome`.
  const offset: Record<string, unknown> = {
    recoveryInWelcome: true,
    ...(client.offset === undefined ? {} : { offset: client.offset }),
  };
  if (client.mode.tickets && client.ticket !== undefined) {
    const ticket = client.ticket;
    client.ticket = undefined;
    counters.ticketHandshakes++;
    return { ticket, ...offset };
  }
  if (client.mode.cookie && !client.cookieRefused) {
    counters.cookieHandshakes++;
    return { cookie: true, ...offset };
  }
  return { token: await fetchToken(client), ...offset };
}

/** One connect: credentials, handshake, `welcome`. Rejects with Refused on a connect_error. */
async function connectOnce(client: Client): Promise<void> {
  const plain = client.target.kind === "plain";
  const auth = client.target.kind === "tether" ? await authFor(client) : {};
  const usedTicket = "ticket" in auth;
  const usedCookie = "cookie" in auth;
  const socket = io(client.target.url, {
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    auth,
    // ws takes these two; engine.io-client's types omit localAddress.
    ...{ localAddress: client.spec.address },
    ...(plain || usedCookie ? { extraHeaders: { cookie: client.spec.cookie } } : {}),
  });
  socket.on(BENCH_EVENT, (payload: { offset?: string }) => {
    counters.received++;
    if (payload.offset !== undefined) client.offset = payload.offset;
  });
  socket.on("ticket", (payload: { ticket?: string }) => {
    if (client.mode.tickets && typeof payload.ticket === "string") client.ticket = payload.ticket;
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Refused("TIMEOUT", undefined)), CONNECT_TIMEOUT_MS);
      socket.once("welcome", (welcome: { instance: string; offset?: string; ticket?: string }) => {
        clearTimeout(timer);
        client.instance = welcome.instance;
        if (client.offset === undefined && welcome.offset !== undefined) client.offset = welcome.offset;
        if (typeof welcome.ticket === "string") {
          counters.ticketsOffered++;
          if (client.mode.tickets) client.ticket = welcome.ticket;
        }
        resolve();
      });
      socket.once("connect_error", (err: Error & { data?: { code?: string; retryAfterMs?: number } }) => {
        clearTimeout(timer);
        const code = err.data?.code ?? (err.message.startsWith("websocket error") ? "NETWORK" : err.message);
        if (usedTicket && code === "TOKEN_INVALID") counters.ticketsRefused++;
        if (usedCookie && code === "TOKEN_INVALID") client.cookieRefused = true;
        reject(new Refused(code, err.data?.retryAfterMs));
      });
    });
  } catch (err) {
    socket.close();
    throw err;
  }
  client.socket = socket;
  client.welcomedAt = Date.now();
  socket.once("disconnect", (reason) => {
    client.socket = undefined;
    if (!client.closed && client.mode.reconnect && reason !== "io client disconnect") void reconnect(client);
  });
}

/** The SDK's wait after a server's retry hint: the hint plus up to 20 % jitter. */
const afterHintMs = (hintMs: number) => hintMs * (1 + Math.random() * 0.2);

function backoffMs(attempt: number): number {
  const base = Math.min(BACKOFF.maxMs, BACKOFF.minMs * 2 ** attempt);
  return base + (Math.random() * 2 - 1) * BACKOFF.jitter * base;
}

/**
 * socket.io-client's reconnection, by hand: backoff with jitter, fatal codes stop, and a
 * refusal's `retryAfterMs` honoured as the SDK does (`client/src/backoff.ts`): the hint, plus
 * up to 20 % jitter, instead of the backoff.
 */
async function reconnect(client: Client): Promise<void> {
  let hintMs: number | undefined;
  for (let attempt = 0; !client.closed; attempt++) {
    await sleep(hintMs === undefined ? backoffMs(Math.min(attempt, 8)) : afterHintMs(hintMs));
    hintMs = undefined;
    if (client.closed) return;
    try {
      await connectOnce(client);
      return;
    } catch (err) {
      const refused = err instanceof Refused ? err : new Refused("NETWORK", undefined);
      counters.errors[refused.code] = (counters.errors[refused.code] ?? 0) + 1;
      if (FATAL.has(refused.code)) {
        client.gaveUp = true;
        return;
      }
      // A refused ticket: straight on with a token. Admission control: what the server asked.
      if (refused.code === "TOKEN_INVALID") attempt = -1;
      hintMs = refused.retryAfterMs;
    }
  }
}

/** An error's message, with the transport's underlying error when socket.io-client wraps one. */
function describe(err: unknown): string {
  if (err instanceof Refused) return err.code;
  if (!(err instanceof Error)) return String(err);
  return err.message;
}

serve<WorkerProtocol>({
  login: async ({ url, path, users, concurrency }) => {
    const cookies: string[] = new Array(users.length).fill("");
    let next = 0;
    let rateLimited = 0;
    const lane = async () => {
      while (next < users.length) {
        const i = next++;
        const { user, address } = users[i]!;
        for (;;) {
          const res = await post(`${url}${path}`, address, JSON.stringify({ user }));
          if (res.status === 429) {
            rateLimited++;
            await sleep((Number(res.headers["retry-after"]) || 1) * 1000 + Math.random() * 500);
            continue;
          }
          const setCookie = res.headers["set-cookie"]?.[0];
          if (res.status !== 200 || setCookie === undefined) throw new Error(`login: HTTP ${res.status} ${res.text}`);
          cookies[i] = setCookie.split(";")[0] ?? "";
          break;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, users.length) }, lane));
    return { cookies, rateLimited };
  },
  open: async ({ target, clients: specs, concurrency, mode }) => {
    let next = 0;
    let failed = 0;
    let hinted = 0;
    let firstError: string | undefined;
    const latenciesMs: number[] = [];
    const lane = async () => {
      while (next < specs.length) {
        const spec = specs[next++]!;
        const client: Client = {
          spec,
          target,
          mode,
          socket: undefined,
          instance: undefined,
          ticket: undefined,
          cookieRefused: false,
          offset: undefined,
          closed: false,
          victim: false,
          welcomedAt: 0,
          gaveUp: false,
        };
        const started = performance.now();
        for (let attempt = 1; ; attempt++) {
          try {
            await connectOnce(client);
            latenciesMs.push(performance.now() - started);
            clients.push(client);
            break;
          } catch (err) {
            // Admission control turned it away with a hint: wait as a client would (the wait counts in its latency).
            if (err instanceof Refused && err.retryAfterMs !== undefined && attempt < MAX_ADMISSION_RETRIES) {
              hinted++;
              await sleep(afterHintMs(err.retryAfterMs));
              continue;
            }
            failed++;
            firstError ??= describe(err);
            break;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, specs.length) }, lane));
    return { opened: specs.length - failed, failed, hinted, firstError, latenciesMs };
  },
  reconnect: async ({ concurrency, kind, slice }) => {
    const held = clients.filter(
      (client) => client.socket !== undefined && (kind === undefined || client.target.kind === kind),
    );
    const all = slice === undefined ? held : held.filter((_, i) => i % slice.of === slice.index);
    for (const client of all) {
      const socket = client.socket;
      client.socket = undefined;
      socket?.close();
    }
    let next = 0;
    let failed = 0;
    let firstError: string | undefined;
    const latenciesMs: number[] = [];
    const lane = async () => {
      while (next < all.length) {
        const client = all[next++]!;
        const started = performance.now();
        for (let attempt = 1; ; attempt++) {
          try {
            await connectOnce(client);
            latenciesMs.push(performance.now() - started);
            break;
          } catch (err) {
            // Admission control's hint honoured, as in `open`; a refused ticket falls back to a token at once.
            const hinted = err instanceof Refused && err.retryAfterMs !== undefined;
            const ticketRefused = err instanceof Refused && err.code === "TOKEN_INVALID" && client.ticket === undefined;
            if ((hinted || ticketRefused) && attempt < MAX_ADMISSION_RETRIES) {
              if (hinted) await sleep(afterHintMs((err as Refused).retryAfterMs!));
              continue;
            }
            failed++;
            firstError ??= describe(err);
            break;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, all.length) }, lane));
    return { opened: all.length - failed, failed, firstError, latenciesMs };
  },
  dropHttp: () => {
    const count = agents.size;
    for (const agent of agents.values()) agent.destroy();
    agents.clear();
    return { agents: count };
  },
  close: ({ count }) => {
    const closing = clients.splice(0, count ?? clients.length);
    for (const client of closing) {
      client.closed = true;
      client.socket?.close();
    }
    return { closed: closing.length, held: clients.length };
  },
  instances: () => {
    const byInstance: Record<string, number> = {};
    for (const client of clients) {
      if (client.socket && client.instance) byInstance[client.instance] = (byInstance[client.instance] ?? 0) + 1;
    }
    return { byInstance };
  },
  counters: () => {
    const now = counters;
    counters = freshCounters();
    return now;
  },
  markVictims: ({ victim }) => {
    let victims = 0;
    for (const client of clients) {
      client.victim = client.socket !== undefined && client.instance === victim;
      if (client.victim) victims++;
    }
    return { victims };
  },
  awaitVictims: async ({ killedAt, timeoutMs }) => {
    const victims = clients.filter((client) => client.victim);
    const back = (client: Client) => client.socket !== undefined && client.welcomedAt > killedAt;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !victims.every((client) => back(client) || client.gaveUp)) await sleep(100);
    const reconnectedMs = victims.filter(back).map((client) => client.welcomedAt - killedAt);
    const gaveUp = victims.filter((client) => client.gaveUp).length;
    return { reconnectedMs, failed: victims.length - reconnectedMs.length, gaveUp };
  },
});
