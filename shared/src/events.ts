import type { SessionEndReason } from "./codes.js";

/** Event names, server → client and client → server. */
export const ServerEvent = {
  Welcome: "welcome",
  SessionEnded: "session:ended",
  Recovery: "recovery",
  /** A fresh resume ticket (see `WelcomePayload.ticket`). */
  Ticket: "ticket",
  JobProgress: "job:progress",
  JobDone: "job:done",
} as const;

export const ClientEvent = {
  Echo: "echo",
} as const;

/** An opaque position in an event stream; clients echo it back unchanged. */
export type Offset = string;

export interface WelcomePayload {
  /** Id of the server instance this socket is attached to. */
  instance: string;
  /** The user stream's current offset: resume from here after a reconnect. */
  offset: Offset;
  /** Current offsets of the rooms with history this socket was joined to. */
  rooms?: Record<string, Offset>;
  /**
   * A resume ticket: single use, bound to the session, valid until
   * `ticketExpiresAt` (epoch ms). Present it as `auth.ticket` on the next
   * reconnect instead of fetching a token; a refused one is retryable (fetch a token).
   */
  ticket?: string;
  ticketExpiresAt?: number;
}

/** A fresh resume ticket, pushed before the previous one expires. */
export interface TicketPayload {
  ticket: string;
  expiresAt: number;
}

export interface SessionEndedPayload {
  reason: SessionEndReason;
}

export interface RecoveryPayload {
  /** False when events were lost (offset older than the recovery window). */
  recovered: boolean;
  /**
   * Recovered: how many missed events were replayed. Not recovered: at least
   * this many events are gone (0 when the offset was unusable).
   */
  missed: number;
  /** Set when this is the recovery of a room's stream rather than the user's. */
  room?: string;
  /**
   * Not recovered: where the stream stands now, to resume from on the next
   * reconnect (the missed events are gone; refetch what they carried).
   */
  offset?: Offset;
}

export interface JobProgressPayload {
  jobId: string;
  step: number;
  steps: number;
  offset: Offset;
}

export interface JobDonePayload {
  jobId: string;
  offset: Offset;
}

/** Every event the server emits to clients. */
export interface ServerToClientEvents {
  welcome: (payload: WelcomePayload) => void;
  "session:ended": (payload: SessionEndedPayload) => void;
  recovery: (payload: RecoveryPayload) => void;
  ticket: (payload: TicketPayload) => void;
  "job:progress": (payload: JobProgressPayload) => void;
  "job:done": (payload: JobDonePayload) => void;
}

/** Every event a client may emit; anything else is ignored by the server. */
export interface ClientToServerEvents {
  echo: (payload: unknown, ack: (payload: unknown) => void) => void;
}

/** Messages between server instances (through the Redis adapter). */
export type InterServerEvents = Record<string, never>;

/** The handshake's `auth` object. */
export interface HandshakeAuth {
  /** A WS token from `POST /api/auth/ws-token`; or, instead, a `ticket`. */
  token?: string;
  /** The last resume ticket the server pushed: a reconnect without an HTTP request. Single use. */
  ticket?: string;
  /** The last user-stream offset the client saw. */
  offset?: Offset;
  /** The last offset seen per room with history. */
  rooms?: Record<string, Offset>;
}
