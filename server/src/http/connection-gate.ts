import type { Server as HttpServer, IncomingMessage, ServerResponse } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import { ErrorCode, Route } from "@tether/shared";
import type { Logger } from "pino";
import { clientIpResolver, type TrustProxy } from "../auth/client-ip.js";
import { HEADROOM_RATIO, MIN_HEADROOM } from "../env/capacity.js";
import { TetherError } from "../errors.js";
import { type ConnectionRefusal, connectionCounts } from "../observability/metrics.js";
import { sendJson } from "./errors.js";

/** Retry-After of a refusal: this many seconds plus up to as many again, so refused clients do not all return at once. */
const RETRY_AFTER_SECONDS = 5;
/** A refused upgrade's socket is destroyed this long after its answer if the client keeps it open. */
const REFUSED_LINGER_MS = 2_000;
/** At most one "instance full" log line per this long, however often the instance fills. */
const FULL_LOG_INTERVAL_MS = 60_000;
/** Probes, answered whatever the load (the ops routes are mounted at the root, whatever the base path). */
const PROBES: ReadonlySet<string> = new Set([Route.Health, Route.Ready, Route.Metrics]);

/** The connection gate's limits (see `gateConnections`). */
export interface ConnectionGateOptions {
  /** The instance cap: past this many open connections, new ones are refused with 503. */
  maxConnections: number;
  /**
   * Open connections not upgraded to WebSocket (keep-alive HTTP, long-polling, probes): past
   * it, a new connection's HTTP request is refused with 503; upgrades still go on to the
   * Socket.IO handshake, whose own cap answers UNAVAILABLE. Unset: no cap of their own.
   */
  maxKeepAliveConnections?: number;
  /** Open connections per client address; past it that address is refused with 503. 0: no limit. */
  maxConnectionsPerIp: number;
  /** How the client's address is read (`TETHER_TRUST_PROXY`); unset: the peer's address. */
  trustProxy?: TrustProxy;
  /** Gets one line when the instance is full. */
  logger?: Logger;
}

/** What a gate counts, for tests and diagnostics. */
export interface ConnectionGate {
  /** Open connections on the server (refused ones until they close included). */
  readonly open: number;
  /** Open connections upgraded to WebSocket. */
  readonly upgraded: number;
  /** Open connections attributed to a client address. */
  openFrom(address: string): number;
}

/** The hard ceiling for a cap: Node drops connections past it (`server.maxConnections`). */
export function connectionCeiling(cap: number): number {
  return cap + Math.max(Math.ceil(cap * HEADROOM_RATIO), MIN_HEADROOM);
}

/**
 * Where the gate keeps what it knows of a connection: properties of the connection's socket,
 * not a table entry or a record object (Node's sockets have free property slots by then, so
 * they cost nothing per connection). `ADDRESS`: the client address it counts for (its first
 * request's, by the client-IP rule), set once it sent a request. `STATE`: `ADMITTED` (judged
 * once, at its first request that is no probe; admitted connections stay admitted) and
 * `UPGRADED` (handed to a WebSocket server: counted apart from plain HTTP ones).
 */
const ADDRESS = Symbol("tether.connection.address");
const STATE = Symbol("tether.connection.state");
const ADMITTED = 1;
const UPGRADED = 2;

/** A socket of the gated server, with what the gate knows of it. */
type Gated = Duplex & { [ADDRESS]?: string; [STATE]?: number };

/**
 * Connection admission on an HTTP(S) server, cheapest check first, before
 * Engine.IO or express see anything (it wraps the server's `emit`, so it holds
 * whatever listeners are added or reshuffled later, as Engine.IO's `attach` does):
 *
 * 1. Probes (`/healthz`, `/readyz`, `/metrics`) are always answered: the load balancer
 *    must see the instance as it is, full or not.
 * 2. A connection that arrives past the instance cap gets 503 + `Retry-After` +
 *    `Connection: close` (the contract's UNAVAILABLE body), an upgrade a plain 503: a
 *    status and a hint, never a bare reset. The Socket.IO handshake's own limits come
 *    after (admission control: UNAVAILABLE with `retryAfterMs`).
 * 3. A plain HTTP request (no upgrade) on a new connection, past `maxKeepAliveConnections`
 *    open connections that are not WebSockets, gets the same 503: keep-alive HTTP cannot take
 *    the descriptors meant for sockets. Upgrades go on to the Socket.IO handshake, which
 *    refuses past its own cap with UNAVAILABLE and a `retryAfterMs` the client honours.
 * 4. The same past `maxConnectionsPerIp` open connections (keep-alive and WebSocket)
 *    from one client address, as `req.ip` reads it: behind a proxy without
 *    `trustProxy`, every client shares the proxy's address.
 *
 * A connection counts for the address of its first request, and is judged once:
 * admitted connections stay admitted. Past a hard ceiling above the cap (2 %, at
 * least 16) Node drops new connections at once (`server.maxConnections`): the last
 * resort against running out of file descriptors. Silent connections (no request)
 * count towards the cap until the headers timeout closes them.
 */
export function gateConnections(server: HttpServer | HttpsServer, options: ConnectionGateOptions): ConnectionGate {
  const { maxConnections: cap, maxConnectionsPerIp: perIp, logger } = options;
  const keepAliveCap = options.maxKeepAliveConnections ?? Number.POSITIVE_INFINITY;
  const clientIp = clientIpResolver(options.trustProxy);
  const perAddress = new Map<string, number>();
  let open = 0;
  let upgraded = 0;
  let fullLoggedAt = Number.NEGATIVE_INFINITY;
  const full = connectionCounts.full;
  /** At a cap (the next connection of its kind would be refused): what the agent check and the gauge read. */
  const measure = () => {
    full.connections = open >= cap;
    full.keep_alive = open - upgraded >= keepAliveCap;
  };
  /** One line per minute at most, however often the instance fills. */
  const logFull = (what: string, count: number, limit: number) => {
    if (Date.now() - fullLoggedAt < FULL_LOG_INTERVAL_MS) return;
    fullLoggedAt = Date.now();
    logger?.warn(
      { open, upgraded, [what]: count, cap: limit },
      `${what} cap reached: new connections get 503 until others close`,
    );
  };

  /** A connection closed: its counts go. */
  const closed = (socket: Gated): void => {
    open -= 1;
    connectionCounts.open -= 1;
    const address = socket[ADDRESS];
    if (address !== undefined) {
      if (((socket[STATE] ?? 0) & UPGRADED) !== 0) upgraded -= 1;
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
    }
    measure();
  };

  /**
   * Every connection's own `emit`, one function for all: it sees the connection's `close` first,
   * then emits as the socket's prototype does. Not a `close` listener: an upgraded WebSocket's
   * socket already has two (Engine.IO's and ws's), and a third grows Node's listener list to 19
   * slots (≈ 0.15 KiB per idle socket, for its life). Every emit of a socket goes through it;
   * `close` is emitted once, by the socket's destroy.
   */
  function gatedEmit(this: Gated, event: string | symbol, ...args: unknown[]): boolean {
    if (event === "close") closed(this);
    return (Object.getPrototypeOf(this) as Duplex).emit.call(this, event, ...args);
  }

  server.maxConnections = connectionCeiling(cap);
  server.on("connection", (socket: Duplex) => {
    open += 1;
    connectionCounts.open += 1;
    measure();
    socket.emit = gatedEmit as Duplex["emit"];
  });

  /** The connection of a request, counted for its client's address at its first request. */
  const connectionOf = (req: IncomingMessage): Gated => {
    const socket = req.socket as Gated;
    if (socket[ADDRESS] !== undefined) return socket;
    const address = clientIp(req);
    socket[ADDRESS] = address;
    socket[STATE] = 0;
    perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
    return socket;
  };

  /** Why this request's connection is refused, or undefined: it may go on. */
  const refusal = (req: IncomingMessage, upgrade: boolean): ConnectionRefusal | undefined => {
    const connection = connectionOf(req);
    const state = connection[STATE] ?? 0;
    if ((state & ADMITTED) !== 0 || PROBES.has(req.url?.split("?", 1)[0] ?? "")) return undefined;
    if (open > cap) {
      logFull("connection", open, cap);
      return refused("instance");
    }
    if (!upgrade && open - upgraded > keepAliveCap) {
      logFull("keep-alive HTTP connection", open - upgraded, keepAliveCap);
      return refused("keep_alive");
    }
    if (perIp > 0 && (perAddress.get(connection[ADDRESS] ?? "") ?? 0) > perIp) return refused("address");
    connection[STATE] = state | ADMITTED;
    return undefined;
  };

  const emit = server.emit;
  server.emit = function gatedServerEmit(this: typeof server, event: string | symbol, ...args: unknown[]): boolean {
    if (event === "request" || event === "checkContinue") {
      const [req, res] = args as [IncomingMessage, ServerResponse];
      const reason = refusal(req, false);
      if (reason !== undefined) {
        refuseRequest(res, reason);
        return true;
      }
    } else if (event === "upgrade") {
      const [req, socket] = args as [IncomingMessage, Duplex];
      const reason = refusal(req, true);
      if (reason !== undefined) {
        refuseUpgrade(socket, reason);
        return true;
      }
      const connection = connectionOf(req);
      const state = connection[STATE] ?? 0;
      if ((state & UPGRADED) === 0) {
        connection[STATE] = state | UPGRADED;
        upgraded += 1;
        measure();
      }
    }
    return emit.apply(this, [event, ...args] as Parameters<typeof emit>);
  } as typeof server.emit;

  return {
    get open() {
      return open;
    },
    get upgraded() {
      return upgraded;
    },
    openFrom: (address) => perAddress.get(address) ?? 0,
  };
}

function refused(reason: ConnectionRefusal): ConnectionRefusal {
  connectionCounts.refused[reason] += 1;
  return reason;
}

const MESSAGES: Readonly<Record<ConnectionRefusal, string>> = {
  instance: "This instance is at its connection limit; retry shortly.",
  address: "Too many open connections from this address; close some or retry later.",
  keep_alive: "This instance is at its limit of HTTP connections; retry shortly.",
};

function retryAfter(): string {
  return String(RETRY_AFTER_SECONDS + Math.floor(Math.random() * (RETRY_AFTER_SECONDS + 1)));
}

function refuseRequest(res: ServerResponse, reason: ConnectionRefusal): void {
  const body = new TetherError(ErrorCode.Unavailable, MESSAGES[reason]).toBody();
  sendJson(res, 503, body, { "Retry-After": retryAfter(), Connection: "close", "Cache-Control": "no-store" });
}

/** The upgrade's socket has no HTTP response object any more: the 503 is written by hand. */
function refuseUpgrade(socket: Duplex, reason: ConnectionRefusal): void {
  const body = JSON.stringify(new TetherError(ErrorCode.Unavailable, MESSAGES[reason]).toBody());
  socket.on("error", () => {});
  socket.end(
    [
      "HTTP/1.1 503 Service Unavailable",
      `Retry-After: ${retryAfter()}`,
      "Connection: close",
      "Cache-Control: no-store",
      "Content-Type: application/json; charset=utf-8",
      `Content-Length: ${Buffer.byteLength(body)}`,
      "",
      body,
    ].join("\r\n"),
  );
  setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
}
