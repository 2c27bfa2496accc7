import type { ErrorCode, SessionEndReason } from "./codes.js";
import type { DemoServerEvents } from "./demo.js";
import type { Offset } from "./offset.js";

/** Event names, server → client and client → server. */
export const ServerEvent = {
  Welcome: "welcome",
  SessionEnded: "session:ended",
  Recovery: "recovery",
  /** A fresh resume ticket (see `WelcomePayload.ticket`). */
  Ticket: "ticket",
  /** A user's first connection in a room arrived (fleet-wide). */
  PresenceJoin: "presence:join",
  /** A user's last connection in a room went (or its instance died). */
  PresenceLeave: "presence:leave",
  /** A member's presence data changed (set by `presence:set`). */
  PresenceUpdate: "presence:update",
  /** A room this socket asked for at reconnect is no longer allowed (`canJoin` refused it). */
  RoomRevoked: "room:revoked",
} as const;

export const ClientEvent = {
  Echo: "echo",
  RoomJoin: "room:join",
  RoomLeave: "room:leave",
  RoomMembers: "room:members",
  /** The last events of the user's stream or of a room this socket is in, on demand. */
  History: "history",
  /** Sets (replaces) this user's presence data in a room this socket is in. */
  PresenceSet: "presence:set",
} as const;

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
  /**
   * The `recovery` of each resumed stream, carried here instead of as events when the client
   * asked (`auth.recoveryInWelcome`) and no stream had anything to replay: one frame per
   * reconnect, not one per stream. Handle each as a `recovery` event that follows `welcome`
   * (the SDK does).
   */
  recovery?: RecoveryPayload[];
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
  /** Not recovered: why (see {@link RecoveryFailure}). */
  reason?: RecoveryFailure;
}

/**
 * Why a stream could not be recovered: `trimmed` (the offset is older than the
 * recovery window), `reset` (the stream's store lost or rolled back its history:
 * another epoch), `invalid` (the offset is not one of this stream's).
 */
export type RecoveryFailure = "trimmed" | "reset" | "invalid";

/**
 * A member's presence data in a room: a small JSON object set at join and
 * updatable (`presence:set`); the server bounds its size.
 */
export type PresenceData = Record<string, unknown>;

/** One member of a room: a user, with its connections in the room across the fleet. */
export interface RoomMember {
  userId: string;
  connections: number;
  /** The member's presence data, when it set any. */
  data?: PresenceData;
}

export interface PresencePayload {
  room: string;
  /** The member's user id. */
  userId: string;
  /** @deprecated the same as `userId` (kept for clients of the first presence release). */
  user: string;
  /** The member's presence data (join and update), when it set any. */
  data?: PresenceData;
}

export interface RoomRevokedPayload {
  room: string;
}

/** A refused room request's acknowledgement. */
export interface RoomAckError {
  ok: false;
  error: { code: ErrorCode; message: string };
}

/**
 * `room:join`'s acknowledgement: the room's `recovery` (also sent as an event), its offset, its members
 * (at most 100 listed; `membersTotal`, from servers that bound the list, counts them all).
 */
export type RoomJoinAck =
  | { ok: true; recovery: RecoveryPayload; offset: Offset; members: RoomMember[]; membersTotal?: number }
  | RoomAckError;

export type RoomLeaveAck = { ok: true } | RoomAckError;

/** One stored event, as history returns it: its offset, name and payload. */
export interface HistoryEvent {
  offset: Offset;
  event: string;
  data: unknown;
}

/**
 * What `history` asks for: the user's own stream (no `room`) or a room this
 * socket is in; at most `limit` events (server default 50, at most 100), the
 * newest ones, or the newest ones before the offset `before` (paging back).
 */
export interface HistoryRequest {
  room?: string;
  limit?: number;
  before?: Offset;
}

/**
 * `history`'s acknowledgement: `events` oldest first (a subscription may go on
 * from the last one's offset), `offset` where the stream stands now, `more`
 * when older events remain (ask again with `before` = the first one's offset).
 */
export type HistoryAck = ({ ok: true } & HistoryPage) | RoomAckError;

/** What a history read asks for, its stream aside: at most `limit` events, the newest or those before `before`. */
export type HistoryOptions = Omit<HistoryRequest, "room">;

/**
 * A page of a stream's history: `events` oldest first, each with its offset (a subscription
 * may go on from the last one's); `offset`, where the stream stands now; `more` when older
 * events remain (ask again with `before` set to the first event's offset).
 */
export interface HistoryPage {
  events: HistoryEvent[];
  offset: Offset;
  more: boolean;
}

/** `presence:set`'s acknowledgement. */
export type PresenceSetAck = { ok: true } | RoomAckError;

/** `room:members`' acknowledgement: at most 100 members listed; `membersTotal` counts them all. */
export type RoomMembersAck = { ok: true; members: RoomMember[]; membersTotal?: number } | RoomAckError;

/**
 * Every event clients hear from the server: Tether's own, and the demo's (typed here
 * for clients, though Tether's core never emits them: see {@link DemoServerEvents}).
 */
export interface ServerToClientEvents {
  welcome: (payload: WelcomePayload) => void;
  "session:ended": (payload: SessionEndedPayload) => void;
  recovery: (payload: RecoveryPayload) => void;
  ticket: (payload: TicketPayload) => void;
  "presence:join": (payload: PresencePayload) => void;
  "presence:leave": (payload: PresencePayload) => void;
  "presence:update": (payload: PresencePayload) => void;
  "room:revoked": (payload: RoomRevokedPayload) => void;
}

/**
 * Tether's events and the demo's, for the demo page's client. `ServerToClientEvents` still
 * includes the demo's (deprecated there: a later release takes them out; type the demo with this).
 */
export type DemoServerToClientEvents = ServerToClientEvents & DemoServerEvents;

/** Every event a client may emit; anything else is ignored by the server. */
export interface ClientToServerEvents {
  echo: (payload: unknown, ack: (payload: unknown) => void) => void;
  /**
   * Joins a room with history at run time (the server's `canJoin` decides), from `offset` if given,
   * with this user's presence data if given.
   */
  "room:join": (
    request: { room: string; offset?: Offset; presence?: PresenceData },
    ack: (result: RoomJoinAck) => void,
  ) => void;
  "room:leave": (request: { room: string }, ack: (result: RoomLeaveAck) => void) => void;
  /** The members of a room this socket is in. */
  "room:members": (request: { room: string }, ack: (result: RoomMembersAck) => void) => void;
  /** The last events of the user's stream or of a room this socket is in. */
  history: (request: HistoryRequest, ack: (result: HistoryAck) => void) => void;
  /** Sets this user's presence data in a room this socket is in. */
  "presence:set": (request: { room: string; data: PresenceData }, ack: (result: PresenceSetAck) => void) => void;
}

/** Messages between server instances (through the Redis adapter). */
export type InterServerEvents = Record<string, never>;

/** The handshake's `auth` object. */
export interface HandshakeAuth {
  /** A WS token from `POST /api/auth/ws-token`; or, instead, a `ticket`. */
  token?: string;
  /** The last resume ticket the server pushed: a reconnect without an HTTP request. Single use. */
  ticket?: string;
  /**
   * `true` instead of a token or ticket: authenticate by the session cookie this
   * handshake's request carries (a browser sends it, same site only), with no token
   * request first. Refused with `TOKEN_INVALID` (retryable) when the request has no
   * usable cookie or its session is gone: the client then fetches a token.
   */
  cookie?: boolean;
  /** The last user-stream offset the client saw. */
  offset?: Offset;
  /** The last offset seen per room with history. */
  rooms?: Record<string, Offset>;
  /**
   * How long the client had been without a connection when it sent this
   * handshake, in ms; absent on a first connect. Feeds the server's
   * time-to-reconnect histogram (`tether_reconnect_duration_seconds`).
   */
  awayMs?: number;
  /**
   * `true`: the client reads the recoveries of a reconnect that missed nothing inside
   * `welcome` (`WelcomePayload.recovery`), one frame instead of one `recovery` per stream.
   * Without it each comes as its own event, as before.
   */
  recoveryInWelcome?: boolean;
}
