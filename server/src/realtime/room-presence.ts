import { ServerEvent } from "@tether/shared";
import type { Logger } from "pino";
import type { MembersRead, PresenceChange, PresenceStore } from "../store/presence.js";
import type { TetherServer } from "./types.js";

/** The Socket.IO room (no history, through the adapter) that carries a room's presence events. */
export const presenceRoom = (room: string) => `presence:${room}`;

/** Members a join ack or `room:members` lists at most (`membersTotal` counts them all). */
export const MEMBERS_LISTED = 100;

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
   */
  async count(userId: string, room: string, delta: 1 | -1, listMembers = false): Promise<MembersRead | undefined> {
    const users = this.local.get(room) ?? new Map<string, number>();
    const n = (users.get(userId) ?? 0) + delta;
    if (n > 0) users.set(userId, n);
    else users.delete(userId);
    if (users.size > 0) this.local.set(room, users);
    else this.local.delete(room);
    try {
      const result = await this.store.update({
        room,
        instanceId: this.options.instanceId,
        mode: "add",
        entries: [[userId, delta]],
        ttlMs: this.options.intervalMs,
        withMembers: listMembers,
        membersLimit: MEMBERS_LISTED,
      });
      this.announce(room, result.changes);
      if (!listMembers) return undefined;
      return { members: result.members ?? [], total: result.membersTotal ?? result.members?.length ?? 0 };
    } catch (err) {
      // The store is unreachable: the heartbeat writes this instance's counts again once it is back.
      this.options.logger.warn({ err: (err as Error).message }, "presence update failed");
      return undefined;
    }
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
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, "presence heartbeat failed");
    } finally {
      this.beating = false;
    }
  }

  private announce(room: string, changes: PresenceChange[]): void {
    for (const { userId, before, after } of changes) {
      const payload = { room, userId, user: userId };
      if (before === 0 && after > 0) this.io.to(presenceRoom(room)).emit(ServerEvent.PresenceJoin, payload);
      else if (before > 0 && after === 0) this.io.to(presenceRoom(room)).emit(ServerEvent.PresenceLeave, payload);
    }
  }
}
