import { ErrorCode, type PresencePayload, payloadShapeProblem, ServerEvent } from "@tether/shared";
import type { Logger } from "pino";
import { TetherError } from "../errors.js";
import type {
  MembersRead,
  PresenceChange,
  PresenceDataChange,
  PresenceResult,
  PresenceStore,
} from "../store/presence.js";
import type { TetherServer } from "./types.js";

/** The Socket.IO room (no history, through the adapter) that carries a room's presence events. */
export const presenceRoom = (room: string) => `presence:${room}`;

/** Members a join ack or `room:members` lists at most (`membersTotal` counts them all). */
export const MEMBERS_LISTED = 100;

/** Presence data: its default size bound (`TETHER_MAX_PRESENCE_BYTES`), and how deep and large it may be. */
export const PRESENCE_DATA_LIMITS = { maxBytes: 1024, maxDepth: 8, maxNodes: 1_000 } as const;

/**
 * Presence data as stored: a JSON object of at most `maxBytes` (UTF-8), nested at most
 * PRESENCE_DATA_LIMITS.maxDepth deep. Throws INVALID_INPUT (naming the bound) otherwise.
 */
export function presenceJson(data: unknown, maxBytes: number): string {
  if (data === null || typeof data !== "object" || Array.isArray(data))
    throw new TetherError(ErrorCode.InvalidInput, "Presence data is a JSON object.");
  const problem = payloadShapeProblem(data, {
    maxDepth: PRESENCE_DATA_LIMITS.maxDepth,
    maxNodes: PRESENCE_DATA_LIMITS.maxNodes,
  });
  if (problem !== undefined) throw new TetherError(ErrorCode.InvalidInput, `Presence data: ${problem}.`);
  const json = JSON.stringify(data);
  if (Buffer.byteLength(json) > maxBytes)
    throw new TetherError(ErrorCode.InvalidInput, `Presence data is at most ${maxBytes} bytes of JSON.`);
  return json;
}

/**
 * This instance's side of presence: its connection counts per room and user,
 * written to the store on every change and renewed by a heartbeat every third
 * of `intervalMs` (entries expire after `intervalMs`: a killed instance's
 * members are gone within one interval). The heartbeat is one store call for
 * all of the instance's rooms (chunked when very many; per room on a Cluster).
 * A user's first connection in a room (fleet-wide) sends `presence:join`, its
 * last `presence:leave`, to the room's members through the Socket.IO adapter.
 */
export class RoomPresence {
  /** This instance's connections per room and user: what the heartbeat writes. */
  private readonly local = new Map<string, Map<string, number>>();
  /**
   * The presence data (JSON) this instance's sockets last set per room and user, while it
   * has a connection of the user there: what it puts back when the store lost it.
   */
  private readonly data = new Map<string, Map<string, string>>();
  private timer: NodeJS.Timeout | undefined;
  /** A heartbeat in flight: the next tick waits for it rather than piling a second one on a slow store. */
  private beating = false;

  constructor(
    private readonly io: TetherServer,
    private readonly store: PresenceStore,
    private readonly options: { instanceId: string; intervalMs: number; logger: Logger },
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.heartbeat(), Math.max(1, this.options.intervalMs / 3)).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * One connection of `userId` in or out of `room`; sent in call order (one
   * store connection keeps it). With `listMembers`, resolves to the room's
   * members after it (at most MEMBERS_LISTED); undefined when the store failed.
   * With `json` (see `presenceJson`), the user's presence data becomes it.
   */
  async count(
    userId: string,
    room: string,
    delta: 1 | -1,
    listMembers = false,
    json?: string,
  ): Promise<MembersRead | undefined> {
    const users = this.local.get(room) ?? new Map<string, number>();
    const n = (users.get(userId) ?? 0) + delta;
    if (n > 0) users.set(userId, n);
    else users.delete(userId);
    if (users.size > 0) this.local.set(room, users);
    else this.local.delete(room);
    if (n <= 0) this.forgetData(room, userId);
    else if (json !== undefined) this.keepData(room, userId, json);
    try {
      const result = await this.store.update({
        room,
        instanceId: this.options.instanceId,
        mode: "add",
        entries: [[userId, delta]],
        ...(json === undefined ? {} : { data: [[userId, json]] }),
        ttlMs: this.options.intervalMs,
        withMembers: listMembers,
        membersLimit: MEMBERS_LISTED,
      });
      this.announce(room, result.changes, result.updates);
      if (!listMembers) return undefined;
      return { members: result.members ?? [], total: result.membersTotal ?? result.members?.length ?? 0 };
    } catch (err) {
      // The store is unreachable: the heartbeat writes this instance's counts again once it is back.
      this.options.logger.warn({ err: (err as Error).message }, "presence update failed");
      return undefined;
    }
  }

  /**
   * Replaces a present user's presence data (`json`, see `presenceJson`) and tells the room
   * `presence:update`; rejects when the store could not be reached.
   */
  async setData(userId: string, room: string, json: string): Promise<void> {
    if ((this.local.get(room)?.get(userId) ?? 0) > 0) this.keepData(room, userId, json);
    const result = await this.store.update({
      room,
      instanceId: this.options.instanceId,
      mode: "add",
      entries: [],
      data: [[userId, json]],
      ttlMs: this.options.intervalMs,
    });
    this.announce(room, result.changes, result.updates);
  }

  /** The room's members across the fleet (a read: nothing written, nothing announced). */
  members(room: string, limit?: number): Promise<MembersRead> {
    return this.store.members(room, limit);
  }

  /** Renews this instance's entries (and puts back any the store lost); announces what changed meanwhile. */
  async heartbeat(): Promise<void> {
    if (this.beating || this.local.size === 0) return;
    this.beating = true;
    const rooms = [...this.local].map(([room, users]) => ({ room, entries: [...users] }));
    try {
      const results = await this.store.updateMany(
        rooms.map(({ room, entries }) => ({
          room,
          instanceId: this.options.instanceId,
          mode: "set" as const,
          entries,
          ttlMs: this.options.intervalMs,
        })),
      );
      for (const [i, result] of results.entries()) {
        const room = rooms[i]?.room;
        if (room !== undefined) this.announce(room, result.changes);
      }
      await this.restoreData(
        rooms.map(({ room }) => room),
        results,
      );
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, "presence heartbeat failed");
    } finally {
      this.beating = false;
    }
  }

  /**
   * After a heartbeat: users it brought back (the store had lost them: a Redis restart
   * without persistence, a FLUSHALL) get the presence data this instance knows back, where
   * the store has none for them now (never over data set meanwhile); the room hears
   * `presence:update` with it.
   */
  private async restoreData(rooms: string[], results: PresenceResult[]): Promise<void> {
    const restores = [];
    for (const [i, result] of results.entries()) {
      const room = rooms[i];
      const known = room === undefined ? undefined : this.data.get(room);
      if (room === undefined || known === undefined) continue;
      const lost = result.changes.filter(
        (change) => change.before === 0 && change.after > 0 && change.data === undefined,
      );
      const data = lost.flatMap(({ userId }): [string, string][] => {
        const json = known.get(userId);
        return json === undefined ? [] : [[userId, json]];
      });
      if (data.length === 0) continue;
      restores.push({
        room,
        instanceId: this.options.instanceId,
        mode: "restore" as const,
        entries: [],
        data,
        ttlMs: this.options.intervalMs,
      });
    }
    if (restores.length === 0) return;
    const restored = await this.store.updateMany(restores);
    for (const [i, result] of restored.entries()) {
      const room = restores[i]?.room;
      if (room !== undefined) this.announce(room, result.changes, result.updates);
    }
  }

  private keepData(room: string, userId: string, json: string): void {
    const users = this.data.get(room) ?? new Map<string, string>();
    users.set(userId, json);
    this.data.set(room, users);
  }

  private forgetData(room: string, userId: string): void {
    const users = this.data.get(room);
    if (!users?.delete(userId) || users.size > 0) return;
    this.data.delete(room);
  }

  private announce(room: string, changes: PresenceChange[], updates: PresenceDataChange[] = []): void {
    const to = this.io.to(presenceRoom(room));
    for (const { userId, before, after, data } of changes) {
      const payload: PresencePayload = { room, userId, user: userId, ...(data === undefined ? {} : { data }) };
      if (before === 0 && after > 0) to.emit(ServerEvent.PresenceJoin, payload);
      else if (before > 0 && after === 0) to.emit(ServerEvent.PresenceLeave, payload);
    }
    for (const { userId, data } of updates) to.emit(ServerEvent.PresenceUpdate, { room, userId, user: userId, data });
  }
}
