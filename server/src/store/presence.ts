import type { RoomMember } from "@tether/shared";
import { PRESENCE_READ, PRESENCE_UPDATE } from "./presence-scripts.js";
import type { RedisClient } from "./redis-connection.js";

/** A user's fleet-wide connection count in a room, before and after one update. */
export interface PresenceChange {
  userId: string;
  before: number;
  after: number;
}

/** One presence update: this instance's connection counts for some users of one room. */
export interface PresenceUpdate {
  room: string;
  instanceId: string;
  /** `add`: counts change by n (a connection came or went). `set`: counts become n (the heartbeat). */
  mode: "add" | "set";
  entries: [userId: string, n: number][];
  /** Every entry written lives this long unless written again: a dead instance's entries vanish. */
  ttlMs: number;
  withMembers?: boolean;
  /** With members: list at most this many (all when absent); `membersTotal` counts them all. */
  membersLimit?: number;
}

export interface PresenceResult {
  /** Every user whose fleet-wide count changed (expired entries of dead instances included), in order. */
  changes: PresenceChange[];
  members?: RoomMember[];
  /** With members: how many there are (more than listed when `membersLimit` cut the list). */
  membersTotal?: number;
}

/** A room's members as read: at most the limit asked for, and how many there are. */
export interface MembersRead {
  members: RoomMember[];
  total: number;
}

/**
 * Who is in each room, across the fleet: per room, each instance's connection
 * count per user, each entry with an expiry that its instance renews. Every
 * update first drops the expired entries (a dead instance's), atomically.
 */
export interface PresenceStore {
  update(update: PresenceUpdate): Promise<PresenceResult>;
  /**
   * Several rooms' updates at once (an instance's heartbeat), results in order:
   * on one Redis one script per chunk of rooms, on a Cluster one per room
   * (a room's keys share a slot; two rooms' usually do not).
   */
  updateMany(updates: PresenceUpdate[]): Promise<PresenceResult[]>;
  /**
   * A room's members, read only: entries past their expiry are left out (the
   * next update removes them). At most `limit` listed (all when absent).
   */
  members(room: string, limit?: number): Promise<MembersRead>;
}

const fieldOf = (instanceId: string, userId: string) => `${instanceId}\n${userId}`;
const userOf = (field: string) => field.slice(field.indexOf("\n") + 1);

/** Rooms and entries in one script call at most: the heartbeat of a busy instance is chunked, no script runs long. */
export const PRESENCE_CHUNK = { rooms: 256, entries: 4_096 } as const;

type Flat = (string | number)[];
type PresenceScripts = {
  tetherPresence(...args: (string | number)[]): Promise<[Flat, Flat, number][]>;
  tetherPresenceRoom(...args: (string | number)[]): Promise<[Flat, Flat, number][]>;
  tetherPresenceRead(...args: (string | number)[]): Promise<[Flat, number]>;
};

const keysOf = (room: string) => {
  const base = `tether:presence:{room:${room}}`;
  return [`${base}:counts`, `${base}:expiries`, `${base}:users`];
};

function membersOf(flat: Flat): RoomMember[] {
  const list: RoomMember[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) list.push({ userId: String(flat[i]), connections: Number(flat[i + 1]) });
  return list;
}

/** Groups updates into script calls: up to PRESENCE_CHUNK's rooms and entries each, or one room each on a Cluster. */
function chunks(updates: PresenceUpdate[], oneRoomEach: boolean): PresenceUpdate[][] {
  const out: PresenceUpdate[][] = [];
  let current: PresenceUpdate[] = [];
  let entries = 0;
  for (const update of updates) {
    const full =
      current.length > 0 &&
      (oneRoomEach ||
        current.length >= PRESENCE_CHUNK.rooms ||
        entries + update.entries.length > PRESENCE_CHUNK.entries);
    if (full) {
      out.push(current);
      current = [];
      entries = 0;
    }
    current.push(update);
    entries += update.entries.length;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Presence in Redis: one script per chunk of updates, each room's three keys in one slot (`{room:<name>}`). */
export class RedisPresenceStore implements PresenceStore {
  private readonly client: RedisClient & PresenceScripts;

  constructor(client: RedisClient) {
    client.defineCommand("tetherPresence", { lua: PRESENCE_UPDATE });
    // One room, its key count fixed: ioredis's Cluster auto-pipelining groups a command by its first
    // argument's slot, and for a script with a variable key count that is the count, not a key (it
    // then sends commands of several slots in one pipeline, and the whole pipeline fails).
    client.defineCommand("tetherPresenceRoom", { numberOfKeys: 3, lua: PRESENCE_UPDATE });
    client.defineCommand("tetherPresenceRead", { numberOfKeys: 3, lua: PRESENCE_READ });
    this.client = client as RedisClient & PresenceScripts;
  }

  async update(update: PresenceUpdate): Promise<PresenceResult> {
    const [result] = await this.run([update]);
    if (!result) throw new Error("presence: no result");
    return result;
  }

  async updateMany(updates: PresenceUpdate[]): Promise<PresenceResult[]> {
    const parts = await Promise.all(chunks(updates, this.client.isCluster).map((chunk) => this.run(chunk)));
    return parts.flat();
  }

  async members(room: string, limit?: number): Promise<MembersRead> {
    const [flat, total] = await this.client.tetherPresenceRead(...keysOf(room), limit ?? -1);
    return { members: membersOf(flat), total: Number(total) };
  }

  /** One script call for these updates (their rooms must share a slot on a Cluster). */
  private async run(updates: PresenceUpdate[]): Promise<PresenceResult[]> {
    const keys = updates.flatMap((update) => keysOf(update.room));
    const args = updates.flatMap((update) => [
      update.ttlMs,
      update.mode,
      update.withMembers ? (update.membersLimit ?? -1) : -2,
      update.entries.length,
      ...update.entries.flatMap(([userId, n]) => [fieldOf(update.instanceId, userId), userId, n]),
    ]);
    const results =
      updates.length === 1
        ? await this.client.tetherPresenceRoom(...keys, ...args)
        : await this.client.tetherPresence(keys.length, ...keys, ...args);
    return updates.map((update, r) => {
      const [flat = [], members = [], total = 0] = results[r] ?? [];
      const changes: PresenceChange[] = [];
      for (let i = 0; i + 2 < flat.length; i += 3)
        changes.push({ userId: String(flat[i]), before: Number(flat[i + 1]), after: Number(flat[i + 2]) });
      if (!update.withMembers) return { changes };
      return { changes, members: membersOf(members), membersTotal: Number(total) };
    });
  }
}

interface MemoryEntry {
  count: number;
  expiresAt: number;
}

/** The in-process twin (embedded mode): the same rules, on Maps. */
export class MemoryPresenceStore implements PresenceStore {
  private readonly rooms = new Map<string, { entries: Map<string, MemoryEntry>; users: Map<string, number> }>();

  constructor(private readonly now: () => number = Date.now) {}

  async update(update: PresenceUpdate): Promise<PresenceResult> {
    const now = this.now();
    const room = this.rooms.get(update.room) ?? { entries: new Map(), users: new Map() };
    const changes: PresenceChange[] = [];
    const bump = (userId: string, delta: number) => {
      if (delta === 0) return;
      const before = room.users.get(userId) ?? 0;
      const after = Math.max(0, before + delta);
      if (after === 0) room.users.delete(userId);
      else room.users.set(userId, after);
      if (before !== after) changes.push({ userId, before, after });
    };
    for (const [field, entry] of room.entries) {
      if (entry.expiresAt > now) continue;
      room.entries.delete(field);
      bump(userOf(field), -entry.count);
    }
    for (const [userId, n] of update.entries) {
      const field = fieldOf(update.instanceId, userId);
      const before = room.entries.get(field)?.count ?? 0;
      const after = Math.max(0, update.mode === "add" ? before + n : n);
      if (after === 0) room.entries.delete(field);
      else room.entries.set(field, { count: after, expiresAt: now + update.ttlMs });
      bump(userId, after - before);
    }
    if (room.entries.size === 0) this.rooms.delete(update.room);
    else this.rooms.set(update.room, room);
    if (!update.withMembers) return { changes };
    // The expired entries are gone already: the users' totals are the members.
    const { members, total } = listMembers(room.users, update.membersLimit);
    return { changes, members, membersTotal: total };
  }

  async updateMany(updates: PresenceUpdate[]): Promise<PresenceResult[]> {
    const results: PresenceResult[] = [];
    for (const update of updates) results.push(await this.update(update));
    return results;
  }

  async members(room: string, limit?: number): Promise<MembersRead> {
    const now = this.now();
    const entries = this.rooms.get(room)?.entries ?? new Map<string, MemoryEntry>();
    const users = new Map<string, number>();
    for (const [field, entry] of entries) {
      if (entry.expiresAt <= now) continue;
      const userId = userOf(field);
      users.set(userId, (users.get(userId) ?? 0) + entry.count);
    }
    return listMembers(users, limit);
  }
}

/** A room's users (user → connections) as members: at most `limit` listed (all when absent), and how many. */
function listMembers(users: Map<string, number>, limit?: number): MembersRead {
  const all = [...users];
  const listed = limit === undefined ? all : all.slice(0, limit);
  return { members: listed.map(([userId, connections]) => ({ userId, connections })), total: all.length };
}
