/**
 * What the bench and its child processes say to each other over IPC, and the
 * event payload every server sends, so both systems put the same bytes on the wire.
 */

/** A protocol: for each command kind, what is sent and what comes back. */
export type Protocol = Record<string, { command: object; result: object }>;

/**
 * Which system a client talks to, and where: Tether (token or ticket handshake), plain (cookie
 * handshake) or bare Socket.IO (no credentials at all).
 */
export interface Target {
  kind: "plain" | "tether" | "bare";
  /** Base URL: one instance, or the load balancer. */
  url: string;
}

/** One simulated browser tab: its user's session cookie and the user's own source address. */
export interface ClientSpec {
  user: string;
  cookie: string;
  address: string;
}

/** How the held clients behave when their connection drops. */
export interface ClientMode {
  /** Reconnect by themselves (socket.io-client's backoff and jitter, `retryAfterMs` honoured). */
  reconnect: boolean;
  /** Keep the server's resume ticket and present it once on the next reconnect, instead of a token. */
  tickets: boolean;
  /**
   * A connect without a ticket is signed in by the session cookie on the upgrade (`auth.cookie`), as
   * the SDK does in a browser; false: a token request before it (a client that keeps no cookie for the
   * socket: Node, a host's `getToken`). A refused cookie falls back to tokens for that client.
   */
  cookie: boolean;
}

/** Counters of a worker since the last reset. */
export interface ClientCounters {
  /** `POST /api/auth/ws-token` requests sent. */
  tokenRequests: number;
  /** Handshakes sent with a ticket instead of a token. */
  ticketHandshakes: number;
  /** Handshakes signed in by the session cookie instead of a token. */
  cookieHandshakes: number;
  /** Tickets the server refused (the client then fell back to a token). */
  ticketsRefused: number;
  /** Welcomes that carried a ticket. */
  ticketsOffered: number;
  /** `connect_error` codes seen. */
  errors: Record<string, number>;
  /** `bench` events received. */
  received: number;
}

/** A client worker: holds socket.io-client sockets, bound to their users' source addresses. */
export type WorkerProtocol = {
  /** Logs `users` in (each from its address), waiting out 429s; returns one cookie per user, in order. */
  login: {
    command: { url: string; path: string; users: { user: string; address: string }[]; concurrency: number };
    result: { cookies: string[]; rateLimited: number };
  };
  /**
   * Opens one socket per spec, `concurrency` at a time; each counts as opened once `welcome` arrives.
   * Latency: from the start of the connect (token request included) to `welcome`.
   */
  open: {
    command: { target: Target; clients: ClientSpec[]; concurrency: number; mode: ClientMode };
    /** `hinted`: handshakes turned away with a retry hint (admission control, a full instance) and waited out. */
    result: { opened: number; failed: number; hinted: number; firstError: string | undefined; latenciesMs: number[] };
  };
  /**
   * Closes the idle keep-alive HTTP connections of every user (the server would after its
   * keep-alive timeout): what stays is the sockets alone, as an idle socket's memory is measured.
   */
  dropHttp: { command: Record<string, never>; result: { agents: number } };
  /**
   * Closes every held socket and connects it again, `concurrency` at a time, as its client
   * would after a dropped connection: with the resume ticket when the mode keeps tickets (a
   * token when it has none), with the cookie on plain. Counts and latencies as `open`.
   * `kind` and `slice` narrow it to one server kind's sockets, and of those to every
   * `slice.of`-th from `slice.index` (an interleaved measurement's turn).
   */
  reconnect: {
    command: { concurrency: number; kind?: "plain" | "tether"; slice?: { index: number; of: number } };
    result: { opened: number; failed: number; firstError: string | undefined; latenciesMs: number[] };
  };
  /** Closes the `count` oldest sockets (all with no count). */
  close: { command: { count?: number }; result: { closed: number; held: number } };
  /** Connected sockets by the instance that welcomed them. */
  instances: { command: Record<string, never>; result: { byInstance: Record<string, number> } };
  /** The counters, then zeroes them. */
  counters: { command: Record<string, never>; result: ClientCounters };
  /**
   * Marks the sockets now on `victim` as the storm's victims; then (after the kill at
   * `killedAt`, epoch ms) waits until each is welcomed again or `timeoutMs` passes.
   */
  markVictims: { command: { victim: string }; result: { victims: number } };
  awaitVictims: {
    command: { killedAt: number; timeoutMs: number };
    result: { reconnectedMs: number[]; failed: number; gaveUp: number };
  };
};

/** What a child sends once it is ready to take commands. */
export interface Ready {
  ready: true;
  port?: number;
}

/** The event every scenario publishes (Tether adds `offset`; plain adds one of the same shape). */
export const BENCH_EVENT = "bench";

/** The event payload (both systems send the same bytes plus an `offset`). */
export function benchPayload(seq: number): { seq: number; text: string } {
  return { seq, text: "the quick brown fox jumps over the lazy dog; the quick brown fox jumps" };
}
