import { ClientEvent, DEFAULTS, ErrorCode, type RoomAckError, type RoomMember, ServerEvent } from "@tether/shared";
import type { Logger } from "pino";
import type { SocketIdentity } from "../auth/service.js";
import { toTetherError } from "../errors.js";
import type { PresenceChange, PresenceStore } from "../store/presence.js";
import type { Delivery } from "./delivery.js";
import { onLeave } from "./socket-lifetime.js";
import { roomStream } from "./streams.js";
import type { TetherServer, TetherSocket } from "./types.js";

/**
 * Whether a user may join a room at run time (`client.join`), or keep it on a
 * reconnect. Rooms granted by `roomsOf` need no check.
 */
export type CanJoin = (identity: SocketIdentity, room: string) => boolean | Promise<boolean>;

/** The Socket.IO room (no history, through the adapter) that carries a room's presence events. */
export const presenceRoom = (room: string) => `presence:${room}`;

/** What the handshake decided about a socket's rooms. */
export interface AdmittedRooms {
  /** Granted by `roomsOf`: always allowed. */
  granted: Set<string>;
  /** Every room the socket starts in (granted, and asked for again and still allowed). */
  rooms: string[];
  /** Asked for (the client's remembered rooms) but refused now: told `room:revoked`. */
  revoked: string[];
}

/** One socket's rooms. Most sockets have none: nothing here is allocated per socket that a room-less socket does not need. */
interface SocketRooms {
  granted: ReadonlySet<string>;
  joined: Set<string>;
  /** Runtime joins in progress (created on the first). */
  joining?: Set<string>;
  /** Counted present in every joined room (from its connection on). */
  present: boolean;
  /** Told at connection, then dropped. */
  revoked: readonly string[];
}

const NONE: ReadonlySet<string> = new Set();
const NO_ROOMS: readonly string[] = [];

const refusal = (code: ErrorCode, message: string): RoomAckError => ({ ok: false, error: { code, message } });

/**
 * Rooms of connected sockets: runtime joins and leaves (authorized by
 * `canJoin`), and presence. Presence counts connections per user per room in
 * the store, per instance, each instance's entries renewed every third of
 * `intervalMs` and expiring after `intervalMs`: a killed instance's members are
 * gone within one interval. A user's first connection in a room (fleet-wide)
 * sends `presence:join`, its last `presence:leave`, to the room's members
 * through the Socket.IO adapter (a room without history: presence is not replayed).
 */
export class Rooms {
  private readonly sockets = new Map<string, SocketRooms>();
  /** This instance's connections per room and user: what the heartbeat writes. */
  private readonly local = new Map<string, Map<string, number>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly io: TetherServer,
    private readonly delivery: Delivery,
    private readonly presence: PresenceStore,
    private readonly options: {
      instanceId: string;
      canJoin: CanJoin;
      intervalMs: number;
      maxRoomsPerSocket?: number;
      logger: Logger;
    },
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.heartbeat(), Math.max(1, this.options.intervalMs / 3)).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private get max(): number {
    return this.options.maxRoomsPerSocket ?? DEFAULTS.maxRoomsPerSocket;
  }

  /**
   * In the handshake: the rooms `roomsOf` granted, plus those the client asks
   * to keep (`auth.rooms`) that `canJoin` still allows; the others are revoked.
   */
  async admit(identity: SocketIdentity, granted: string[], asked: string[]): Promise<AdmittedRooms> {
    const grantedSet = new Set(granted);
    const extra = [...new Set(asked.filter((room) => !grantedSet.has(room)))].slice(
      0,
      Math.max(0, this.max - grantedSet.size),
    );
    const verdicts = await Promise.all(extra.map((room) => this.options.canJoin(identity, room)));
    return {
      granted: grantedSet,
      rooms: [...grantedSet, ...extra.filter((_, i) => verdicts[i] === true)],
      revoked: extra.filter((_, i) => verdicts[i] !== true),
    };
  }

  /** In the handshake, once admitted: the socket's rooms, until it leaves. */
  prepare(socket: TetherSocket, admitted: AdmittedRooms): void {
    const state: SocketRooms = {
      granted: admitted.granted.size > 0 ? admitted.granted : NONE,
      joined: new Set(admitted.rooms),
      present: false,
      revoked: admitted.revoked.length > 0 ? admitted.revoked : NO_ROOMS,
    };
    this.sockets.set(socket.id, state);
    onLeave(socket, () => {
      this.sockets.delete(socket.id);
      if (state.present) for (const room of state.joined) void this.count(socket, room, -1);
    });
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
      void this.count(socket, room, +1);
    }
  }

  /** `room:join`: authorize, then replay from the offset and go live; the ack carries the recovery and members. */
  async join(socket: TetherSocket, room: string, offset: string | undefined) {
    const state = this.sockets.get(socket.id);
    if (!state) return refusal(ErrorCode.Unavailable, "Not connected.");
    if (state.joining?.has(room)) return refusal(ErrorCode.InvalidInput, "Already joining this room.");
    if (!state.joined.has(room) && state.joined.size + (state.joining?.size ?? 0) >= this.max)
      return refusal(ErrorCode.InvalidInput, `At most ${this.max} rooms per connection.`);
    state.joining ??= new Set();
    const joining = state.joining;
    joining.add(room);
    try {
      if (!state.granted.has(room) && !state.joined.has(room) && !(await this.options.canJoin(socket.data, room)))
        return refusal(ErrorCode.Forbidden, "Not allowed to join this room.");
      const { offset: now, ...recovery } = await this.delivery.subscribe(socket, roomStream(room), offset);
      if (!socket.connected || this.sockets.get(socket.id) !== state) return refusal(ErrorCode.Unavailable, "Gone.");
      let members: RoomMember[] | undefined;
      if (!state.joined.has(room)) {
        state.joined.add(room);
        socket.join(presenceRoom(room));
        members = await this.count(socket, room, +1, true);
      }
      return { ok: true as const, recovery, offset: now, members: members ?? (await this.members(room)) };
    } catch (err) {
      const error = toTetherError(err);
      if (error.code === ErrorCode.Internal)
        this.options.logger.error({ err: (err as Error).message, room: room.slice(0, 64) }, "room join failed");
      return refusal(error.code === ErrorCode.Internal ? ErrorCode.Unavailable : error.code, error.message);
    } finally {
      joining.delete(room);
    }
  }

  /** `room:leave`: its events and presence stop at once (a `roomsOf` room comes back at the next connect). */
  async leave(socket: TetherSocket, room: string): Promise<void> {
    const state = this.sockets.get(socket.id);
    if (!state?.joined.delete(room)) return;
    this.delivery.unsubscribe(socket, roomStream(room));
    socket.leave(presenceRoom(room));
    // Acknowledged once presence has it: a members() after the leave does not count this socket.
    if (state.present) await this.count(socket, room, -1);
  }

  /** Whether this socket is in the room (it may ask for its members). */
  isIn(socket: TetherSocket, room: string): boolean {
    return this.sockets.get(socket.id)?.joined.has(room) ?? false;
  }

  /** The room's members across the fleet: users with their connection counts. */
  async members(room: string): Promise<RoomMember[]> {
    const result = await this.presence.update({
      room,
      instanceId: this.options.instanceId,
      mode: "add",
      entries: [],
      ttlMs: this.options.intervalMs,
      withMembers: true,
    });
    this.announce(room, result.changes);
    return result.members ?? [];
  }

  /** One connection in or out; sent in call order (one store connection keeps it). */
  private async count(
    socket: TetherSocket,
    room: string,
    delta: 1 | -1,
    withMembers = false,
  ): Promise<RoomMember[] | undefined> {
    const { userId } = socket.data;
    const users = this.local.get(room) ?? new Map<string, number>();
    const n = (users.get(userId) ?? 0) + delta;
    if (n > 0) users.set(userId, n);
    else users.delete(userId);
    if (users.size > 0) this.local.set(room, users);
    else this.local.delete(room);
    try {
      const result = await this.presence.update({
        room,
        instanceId: this.options.instanceId,
        mode: "add",
        entries: [[userId, delta]],
        ttlMs: this.options.intervalMs,
        withMembers,
      });
      this.announce(room, result.changes);
      return result.members;
    } catch (err) {
      // The store is unreachable: the heartbeat writes this instance's counts again once it is back.
      this.options.logger.warn({ err: (err as Error).message }, "presence update failed");
      return undefined;
    }
  }

  /** Renews this instance's entries (and puts back any the store lost); announces what changed meanwhile. */
  private async heartbeat(): Promise<void> {
    await Promise.all(
      [...this.local].map(async ([room, users]) => {
        try {
          const result = await this.presence.update({
            room,
            instanceId: this.options.instanceId,
            mode: "set",
            entries: [...users],
            ttlMs: this.options.intervalMs,
          });
          this.announce(room, result.changes);
        } catch (err) {
          this.options.logger.warn({ err: (err as Error).message }, "presence heartbeat failed");
        }
      }),
    );
  }

  private announce(room: string, changes: PresenceChange[]): void {
    for (const { userId, before, after } of changes) {
      const payload = { room, user: userId };
      if (before === 0 && after > 0) this.io.to(presenceRoom(room)).emit(ServerEvent.PresenceJoin, payload);
      else if (before > 0 && after === 0) this.io.to(presenceRoom(room)).emit(ServerEvent.PresenceLeave, payload);
    }
  }
}

/** Acknowledges when the client asked for it (the guard made `ack` safe to call with anything). */
function answer(ack: unknown, reply: unknown): void {
  if (typeof ack === "function") ack(reply);
}

/**
 * The client's room events (validated by the inbound guard before they get here),
 * as listeners shared by every socket: Socket.IO calls a listener with the socket
 * as `this`, so a connect allocates no closure for them.
 *
 * @example
 * const listen = roomEvents(rooms);
 * io.on("connection", (socket) => listen(socket));
 */
export function roomEvents(rooms: Rooms): (socket: TetherSocket) => void {
  function onJoin(this: TetherSocket, { room, offset }: { room: string; offset?: string }, ack?: unknown) {
    void rooms.join(this, room, offset).then(
      (result) => answer(ack, result),
      (err: unknown) => answer(ack, refusal(ErrorCode.Unavailable, toTetherError(err).message)),
    );
  }
  function onLeave(this: TetherSocket, { room }: { room: string }, ack?: unknown) {
    void rooms.leave(this, room).then(
      () => answer(ack, { ok: true }),
      (err: unknown) => answer(ack, refusal(ErrorCode.Unavailable, toTetherError(err).message)),
    );
  }
  function onMembers(this: TetherSocket, { room }: { room: string }, ack?: unknown) {
    if (typeof ack !== "function") return;
    if (!rooms.isIn(this, room)) {
      ack(refusal(ErrorCode.Forbidden, "Not in this room."));
      return;
    }
    rooms.members(room).then(
      (members) => ack({ ok: true, members }),
      (err: unknown) => ack(refusal(ErrorCode.Unavailable, toTetherError(err).message)),
    );
  }
  return (socket) => {
    socket.on(ClientEvent.RoomJoin, onJoin);
    socket.on(ClientEvent.RoomLeave, onLeave);
    socket.on(ClientEvent.RoomMembers, onMembers);
  };
}
