import { ErrorCode, type PresenceData, type RoomAckError, ServerEvent } from "@tether/shared";
import type { Logger } from "pino";
import type { SocketIdentity } from "../auth/service.js";
import { toTetherError } from "../errors.js";
import type { MembersRead, PresenceStore } from "../store/presence.js";
import type { Delivery } from "./delivery.js";
import type { RoomsOf } from "./handshake.js";
import { RoomBounds, type RoomLimits } from "./room-bounds.js";
import type { RoomControl } from "./room-control.js";
import { MEMBERS_LISTED, PRESENCE_DATA_LIMITS, presenceJson, presenceRoom, RoomPresence } from "./room-presence.js";
import { REALTIME_DEFAULTS } from "./settings.js";
import type { SocketLifetime } from "./socket-lifetime.js";
import { roomStream } from "./streams.js";
import type { TetherServer, TetherSocket } from "./types.js";

export { presenceRoom };

/**
 * Whether a user may join a room at run time (`client.join`), or keep it on a
 * reconnect or a `recheckRooms`. Rooms granted by `roomsOf` need no check.
 */
export type CanJoin = (identity: SocketIdentity, room: string) => boolean | Promise<boolean>;

/** What the handshake decided about a socket's rooms. */
export interface AdmittedRooms {
  /** Granted by `roomsOf`: always allowed. */
  granted: Set<string>;
  /** Every room the socket starts in (granted, and asked for again and still allowed). */
  rooms: string[];
  /** Asked for (the client's remembered rooms) but refused now: told `room:revoked`. */
  revoked: string[];
}

/**
 * One socket's rooms. Most sockets have none: a socket in no room, granted none and
 * told nothing has no entry at all until its first join (see `Rooms.stateOf`).
 */
interface SocketRooms {
  socket: TetherSocket;
  granted: ReadonlySet<string>;
  /**
   * Each joined room is held in the bounds until the socket leaves it. A socket in no room
   * shares `NOT_JOINED` (never added to): its own set is made at its first join.
   */
  joined: Set<string>;
  /** Runtime joins in progress (created on the first); a new room is held from the start of its join. */
  joining?: Set<string>;
  /** Joins in progress that a removal reached first: they are refused. */
  cancelled?: Set<string>;
  /** Counted present in every joined room (from its connection on). */
  present: boolean;
  /** Told at connection, then dropped. */
  revoked: readonly string[];
}

const NONE: ReadonlySet<string> = new Set();
/** The rooms of a socket in none: shared, only read and deleted from (see `SocketRooms.joined`). */
const NOT_JOINED = new Set<string>();
const NO_ROOMS: readonly string[] = [];
/** Sockets whose rooms `recheck` asks about at once: a recheck of a busy instance does not flood the host's checks. */
const RECHECK_BATCH = 64;

export const refusal = (code: ErrorCode, message: string): RoomAckError => ({ ok: false, error: { code, message } });

/**
 * Rooms of connected sockets: runtime joins and leaves (authorized by
 * `canJoin`), bounded per socket, per user and per instance (see
 * `RoomBounds`), presence (see `RoomPresence`), and removals decided by the
 * host (`removeFromRoom`, `recheckRooms`) through the control channel.
 */
export class Rooms {
  private readonly sockets = new Map<string, SocketRooms>();
  private readonly bounds: RoomBounds;
  private readonly presence: RoomPresence;
  private readonly part: number;

  constructor(
    io: TetherServer,
    private readonly delivery: Delivery,
    store: PresenceStore,
    private readonly options: {
      instanceId: string;
      canJoin: CanJoin;
      /** Asked again by `recheck` for the rooms it granted. */
      roomsOf?: RoomsOf;
      intervalMs: number;
      maxRoomsPerSocket?: number;
      limits?: RoomLimits;
      /** A member's presence data, at most (JSON bytes); default PRESENCE_DATA_LIMITS.maxBytes. */
      maxPresenceBytes?: number;
      logger: Logger;
    },
    private readonly lifetime: SocketLifetime,
  ) {
    this.part = lifetime.part({ release: (socket) => this.release(socket) });
    this.bounds = new RoomBounds(options.limits ?? { perUser: 0, perInstance: 0 });
    this.presence = new RoomPresence(io, store, options);
  }

  start(): void {
    this.presence.start();
  }

  stop(): void {
    this.presence.stop();
  }

  /** Presence data as stored; INVALID_INPUT past the bounds. */
  private presenceJson(data: unknown): string {
    return presenceJson(data, this.options.maxPresenceBytes ?? PRESENCE_DATA_LIMITS.maxBytes);
  }

  private get max(): number {
    return this.options.maxRoomsPerSocket ?? REALTIME_DEFAULTS.maxRoomsPerSocket;
  }

  /**
   * In the handshake: the rooms `roomsOf` granted, plus those the client asks
   * to keep (`auth.rooms`) that `canJoin` still allows; the others are revoked,
   * and so are rooms past the user's or the instance's bound (not asked about).
   */
  async admit(identity: SocketIdentity, granted: string[], asked: string[]): Promise<AdmittedRooms> {
    const grantedSet = new Set(granted);
    const extra = [...new Set(asked.filter((room) => !grantedSet.has(room)))].slice(
      0,
      Math.max(0, this.max - grantedSet.size),
    );
    const [within, beyond] = this.bounds.split(identity.userId, [...grantedSet, ...extra]);
    const ask = within.filter((room) => !grantedSet.has(room));
    const verdicts = await Promise.all(ask.map((room) => this.options.canJoin(identity, room)));
    return {
      granted: grantedSet,
      rooms: [...within.filter((room) => grantedSet.has(room)), ...ask.filter((_, i) => verdicts[i] === true)],
      revoked: [...ask.filter((_, i) => verdicts[i] !== true), ...beyond],
    };
  }

  /**
   * In the handshake, once admitted: the socket's rooms, held in the bounds
   * until it leaves. Synchronous, so the bounds decide here for good: a room
   * another handshake took meanwhile past a bound is taken off the socket and revoked.
   */
  prepare(socket: TetherSocket, admitted: AdmittedRooms): void {
    const { userId } = socket.data;
    const [within, beyond] = this.bounds.split(userId, admitted.rooms);
    for (const room of within) this.bounds.take(userId, room);
    for (const room of beyond) this.delivery.unsubscribe(socket, roomStream(room));
    const revoked = [...admitted.revoked, ...beyond];
    // Nothing to keep for a socket in no room (≈ 0.1 KiB per idle socket): made at its first join.
    if (admitted.granted.size > 0 || within.length > 0 || revoked.length > 0) {
      this.sockets.set(socket.id, {
        socket,
        granted: admitted.granted.size > 0 ? admitted.granted : NONE,
        joined: within.length > 0 ? new Set(within) : NOT_JOINED,
        present: false,
        revoked: revoked.length > 0 ? revoked : NO_ROOMS,
      });
    }
    this.lifetime.took(socket, this.part);
  }

  /**
   * A socket's rooms, made for a connected socket in none at its first join: undefined
   * for one that never passed the handshake here or has left.
   */
  private stateOf(socket: TetherSocket): SocketRooms | undefined {
    const known = this.sockets.get(socket.id);
    if (known || !socket.connected || !this.lifetime.holds(socket, this.part)) return known;
    const state: SocketRooms = { socket, granted: NONE, joined: NOT_JOINED, present: true, revoked: NO_ROOMS };
    this.sockets.set(socket.id, state);
    return state;
  }

  /** The socket left: its rooms' bounds and presence counts are given back. */
  private release(socket: TetherSocket): void {
    const state = this.sockets.get(socket.id);
    if (state?.socket !== socket) return;
    const { userId } = socket.data;
    this.sockets.delete(socket.id);
    for (const room of state.joined) {
      this.bounds.release(userId, room);
      if (state.present) void this.presence.count(userId, room, -1);
    }
  }

  /** On connection: revoked rooms are told, and the socket's rooms count it present. */
  connected(socket: TetherSocket): void {
    const state = this.sockets.get(socket.id);
    if (!state) return;
    for (const room of state.revoked) socket.emit(ServerEvent.RoomRevoked, { room });
    state.revoked = NO_ROOMS;
    state.present = true;
    for (const room of state.joined) {
      socket.join(presenceRoom(room));
      void this.presence.count(socket.data.userId, room, +1);
    }
  }

  /**
   * `room:join`: bound, authorize, then replay from the offset and go live; the
   * ack carries the recovery and the members (at most MEMBERS_LISTED, and `membersTotal`).
   * With `presence`, the user's presence data in the room becomes it (checked first).
   */
  async join(socket: TetherSocket, room: string, offset: string | undefined, presence?: PresenceData) {
    const state = this.stateOf(socket);
    if (!state) return refusal(ErrorCode.Unavailable, "Not connected.");
    let json: string | undefined;
    try {
      json = presence === undefined ? undefined : this.presenceJson(presence);
    } catch (err) {
      return refusal(ErrorCode.InvalidInput, (err as Error).message);
    }
    if (state.joining?.has(room)) return refusal(ErrorCode.InvalidInput, "Already joining this room.");
    const { userId } = socket.data;
    const fresh = !state.joined.has(room);
    if (fresh) {
      if (state.joined.size + (state.joining?.size ?? 0) >= this.max)
        return refusal(ErrorCode.InvalidInput, `At most ${this.max} rooms per connection.`);
      const bound = this.bounds.refusal(userId, room);
      if (bound) return refusal(bound.code, bound.message);
      this.bounds.take(userId, room);
    }
    state.joining ??= new Set();
    const joining = state.joining;
    joining.add(room);
    try {
      if (fresh && !state.granted.has(room) && !(await this.options.canJoin(socket.data, room)))
        return refusal(ErrorCode.Forbidden, "Not allowed to join this room.");
      if (state.cancelled?.delete(room)) return refusal(ErrorCode.Forbidden, "Removed from this room.");
      const { offset: now, ...recovery } = await this.delivery.subscribe(socket, roomStream(room), offset);
      if (!socket.connected || this.sockets.get(socket.id) !== state) return refusal(ErrorCode.Unavailable, "Gone.");
      if (state.cancelled?.delete(room)) {
        // Removed meanwhile (the stream was added back by this join): it goes again.
        this.delivery.unsubscribe(socket, roomStream(room));
        return refusal(ErrorCode.Forbidden, "Removed from this room.");
      }
      let members: MembersRead | undefined;
      if (fresh) {
        if (state.joined === NOT_JOINED) state.joined = new Set();
        state.joined.add(room);
        socket.join(presenceRoom(room));
        members = await this.presence.count(userId, room, +1, true, json);
      } else if (json !== undefined) await this.presence.setData(userId, room, json);
      members ??= await this.presence.members(room, MEMBERS_LISTED);
      return { ok: true as const, recovery, offset: now, members: members.members, membersTotal: members.total };
    } catch (err) {
      const error = toTetherError(err);
      if (error.code === ErrorCode.Internal)
        this.options.logger.error({ err: (err as Error).message, room: room.slice(0, 64) }, "room join failed");
      return refusal(error.code === ErrorCode.Internal ? ErrorCode.Unavailable : error.code, error.message);
    } finally {
      joining.delete(room);
      state.cancelled?.delete(room);
      if (fresh && !state.joined.has(room)) this.bounds.release(userId, room);
    }
  }

  /** `room:leave`: its events and presence stop at once (a `roomsOf` room comes back at the next connect). */
  async leave(socket: TetherSocket, room: string): Promise<void> {
    const state = this.sockets.get(socket.id);
    if (!state?.joined.delete(room)) return;
    this.bounds.release(socket.data.userId, room);
    this.delivery.unsubscribe(socket, roomStream(room));
    socket.leave(presenceRoom(room));
    // Acknowledged once presence has it: a members() after the leave does not count this socket.
    if (state.present) await this.presence.count(socket.data.userId, room, -1);
  }

  /**
   * `presence:set`: replaces this user's presence data in a room this socket is in
   * (FORBIDDEN otherwise; INVALID_INPUT past the bounds); the room hears `presence:update`.
   * Per user: the user's other connections share it, the last set wins.
   */
  async setPresence(socket: TetherSocket, room: string, data: unknown): Promise<{ ok: true } | RoomAckError> {
    if (!this.isIn(socket, room)) return refusal(ErrorCode.Forbidden, "Not in this room.");
    try {
      await this.presence.setData(socket.data.userId, room, this.presenceJson(data));
      return { ok: true };
    } catch (err) {
      const error = toTetherError(err);
      return refusal(error.code, error.message);
    }
  }

  /** Whether this socket is in the room (it may ask for its members). */
  isIn(socket: TetherSocket, room: string): boolean {
    return this.sockets.get(socket.id)?.joined.has(room) ?? false;
  }

  /** The room's members across the fleet: users with their connection counts (at most `limit`), and how many. */
  members(room: string, limit?: number): Promise<MembersRead> {
    return this.presence.members(room, limit);
  }

  /**
   * A host's instruction, on this instance. `sockets` resolves a session's room
   * tag to its sockets here. A recheck resolves once every socket was checked.
   */
  async control(control: RoomControl, sessionSockets: (tag: string) => Iterable<TetherSocket>): Promise<void> {
    if (control.op === "recheck") return this.recheck(control.room);
    const sockets =
      "session" in control
        ? sessionSockets(control.session)
        : [...this.sockets.values()].filter((s) => s.socket.data.userId === control.userId).map((s) => s.socket);
    for (const socket of sockets) this.remove(socket, control.room);
  }

  /**
   * Takes a socket out of a room now: its stream unsubscribed (no further
   * events), out of the presence room and no longer counted present
   * (`presence:leave` when it was the user's last connection), no longer
   * granted, and told `room:revoked {room}` (at connection, if not connected
   * yet). A join of the room in progress is refused.
   */
  remove(socket: TetherSocket, room: string): void {
    const state = this.sockets.get(socket.id);
    if (!state) return;
    if (state.joining?.has(room)) {
      state.cancelled ??= new Set();
      state.cancelled.add(room);
    }
    if (state.granted.has(room)) state.granted = new Set([...state.granted].filter((r) => r !== room));
    if (!state.joined.delete(room)) return;
    const { userId } = socket.data;
    this.bounds.release(userId, room);
    this.delivery.unsubscribe(socket, roomStream(room));
    if (!state.present) {
      state.revoked = [...state.revoked, room];
      return;
    }
    socket.leave(presenceRoom(room));
    socket.emit(ServerEvent.RoomRevoked, { room });
    void this.presence.count(userId, room, -1);
  }

  /**
   * Asks again, for every socket here in `room` (every room when absent):
   * `roomsOf` for the rooms it granted, `canJoin` for the others (and for a
   * granted room `roomsOf` no longer grants). Those no longer allowed are
   * removed. A check that throws keeps the room (logged): a blip in the host's
   * store must not empty every room.
   */
  async recheck(room?: string): Promise<void> {
    const states = [...this.sockets.values()].filter((s) =>
      room === undefined ? s.joined.size > 0 : s.joined.has(room),
    );
    for (let i = 0; i < states.length; i += RECHECK_BATCH)
      await Promise.all(states.slice(i, i + RECHECK_BATCH).map((state) => this.recheckSocket(state, room)));
  }

  private async recheckSocket(state: SocketRooms, only: string | undefined): Promise<void> {
    const { socket } = state;
    const rooms = only === undefined ? [...state.joined] : [only];
    try {
      const granted = rooms.some((r) => state.granted.has(r))
        ? new Set(this.options.roomsOf ? await this.options.roomsOf(socket.data) : [])
        : NONE;
      const verdicts = await Promise.all(
        rooms.map(async (r) => granted.has(r) || (await this.options.canJoin(socket.data, r)) === true),
      );
      // The socket may have left, or left and re-joined, meanwhile: only its current state is acted on.
      if (this.sockets.get(socket.id) !== state) return;
      for (const [i, r] of rooms.entries()) {
        if (verdicts[i]) {
          if (state.granted.has(r) && !granted.has(r))
            state.granted = new Set([...state.granted].filter((g) => g !== r));
        } else this.remove(socket, r);
      }
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, "room recheck failed; rooms kept");
    }
  }
}
