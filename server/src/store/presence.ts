import type { PresenceData, RoomMember } from "@tether/shared";
import { PRESENCE_READ, PRESENCE_UPDATE } from "./presence-scripts.js";
import type { RedisClient } from "./redis-connection.js";

/** A user's fleet-wide connection count in a room, before and after one update. */
export interface PresenceChange {
  userId: string;
  before: number;
  after: number;
  /** A join: the data it joined with; a leave: the data it had. Absent when none. */
  data?: PresenceData;
}

/** A present user's data, replaced by an update. */
export interface PresenceDataChange {
  userId: string;
  data: PresenceData;
}

/** One presence update: this instance's connection counts for some users of one room. */
export interface PresenceUpdate {
  room: string;
  instanceId: string;
  /**
   * `add`: counts change by n (a connection came or went). `set`: counts become n (the heartbeat).
   * `restore`: as `add`, and `data` is set only for a present user who has none (what an
   * instance puts back after the store lost it, never over data set since).
   */
  mode: "add" | "set" | "restore";
  entries: [userId: string, n: number][];
  /**
   * Presence data (JSON text of an object, bounded by the caller) to set for users, after the
   * entries: only for a user present then (one the entries just brought in joins with it).
   */
  data?: [userId: string, json: string][];
  /** Every entry written lives this long unless written again: a dead instance's entries vanish. */
  ttlMs: number;
  withMembers?: boolean;
  /** With members: list at most this many (all when absent); `membersTotal` counts them all. */
  membersLimit?: number;
}

export interface PresenceResult {
  /** Every user whose fleet-wide count changed (expired entries of dead instances included), in order. */
  changes: PresenceChange[];
  /** Data set for users already present (a join's data is in its change). */
  updates?: PresenceDataChange[];
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
  tetherPresence(...args: (string | number)[]): Promise<[Flat, Flat, number, Flat][]>;
  tetherPresenceRoom(...args: (string | number)[]): Promise<[Flat, Flat, number, Flat][]>;
  tetherPresenceRead(...args: (string | number)[]): Promise<[Flat, number]>;
};

const keysOf = (room: string) => {
  const base = `tether:presence:{room:${room}}`;
  return [`${base}:counts`, `${base}:expiries`, `${base}:users`, `${base}:data`];
};

/** Stored presence data ('' or not an object: none). */
function dataOf(json: unknown): PresenceData | undefined {
  if (typeof json !== "string" || json === "") return undefined;
  try {
    const data: unknown = JSON.parse(json);
    return data !== null && typeof data === "object" && !Array.isArray(data) ? (data as PresenceData) : undefined;
  } catch {
    return undefined;
  }
}

/** `{ userId, connections }`, with `data` when there is some. */
function member(userId: string, connections: number, json: unknown): RoomMember {
  const data = dataOf(json);
  return data === undefined ? { userId, connections } : { userId, connections, data };
}

function membersOf(flat: Flat): RoomMember[] {
  const list: RoomMember[] = [];
  for (let i = 0; i + 2 < flat.length; i += 3) list.push(member(String(flat[i]), Number(flat[i + 1]), flat[i + 2]));
  return list;
}

function changeOf(userId: string, before: number, after: number, json: unknown): PresenceChange {
  const data = dataOf(json);
  return data === undefined ? { userId, before, after } : { userId, before, after, data };
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
    client.defineCommand("tetherPresenceRoom", { numberOfKeys: 4, lua: PRESENCE_UPDATE });
    client.defineCommand("tetherPresenceRead", { numberOfKeys: 4, lua: PRESENCE_READ });
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
      update.data?.length ?? 0,
      ...(update.data ?? []).flat(),
    ]);
    const results =
      updates.length === 1
        ? await this.client.tetherPresenceRoom(...keys, ...args)
        : await this.client.tetherPresence(keys.length, ...keys, ...args);
    return updates.map((update, r) => {
      const [flat = [], members = [], total = 0, updated = []] = results[r] ?? [];
      const changes: PresenceChange[] = [];
      for (let i = 0; i + 3 < flat.length; i += 4)
        changes.push(changeOf(String(flat[i]), Number(flat[i + 1]), Number(flat[i + 2]), flat[i + 3]));
      const updates: PresenceDataChange[] = [];
      for (let i = 0; i + 1 < updated.length; i += 2) {
        const data = dataOf(updated[i + 1]);
        if (data) updates.push({ userId: String(updated[i]), data });
      }
      const result: PresenceResult = updates.length > 0 ? { changes, updates } : { changes };
      if (!update.withMembers) return result;
      return { ...result, members: membersOf(members), membersTotal: Number(total) };
    });
  }
}

interface MemoryEntry {
  count: number;
  expiresAt: number;
}

interface MemoryRoom {
  entries: Map<string, MemoryEntry>;
  users: Map<string, number>;
  /** user → its presence data as JSON, while present. */
  data: Map<string, string>;
}

/** The in-process twin (embedded mode): the same rules, on Maps. */
export class MemoryPresenceStore implements PresenceStore {
  private readonly rooms = new Map<string, MemoryRoom>();

  constructor(private readonly now: () => number = Date.now) {}

  async update(update: PresenceUpdate): Promise<PresenceResult> {
    const now = this.now();
    const room: MemoryRoom = this.rooms.get(update.room) ?? { entries: new Map(), users: new Map(), data: new Map() };
    const changes: PresenceChange[] = [];
    const joined = new Map<string, number>();
    const bump = (userId: string, delta: number) => {
      if (delta === 0) return;
      const before = room.users.get(userId) ?? 0;
      const after = Math.max(0, before + delta);
      let json: string | undefined;
      if (after === 0) {
        room.users.delete(userId);
        json = room.data.get(userId);
        room.data.delete(userId);
      } else room.users.set(userId, after);
      if (before === after) return;
      changes.push(changeOf(userId, before, after, json));
      if (before === 0) joined.set(userId, changes.length - 1);
    };
    for (const [field, entry] of room.entries) {
      if (entry.expiresAt > now) continue;
      room.entries.delete(field);
      bump(userOf(field), -entry.count);
    }
    for (const [userId, n] of update.entries) {
      const field = fieldOf(update.instanceId, userId);
      const before = room.entries.get(field)?.count ?? 0;
      const after = Math.max(0, update.mode === "set" ? n : before + n);
      if (after === 0) room.entries.delete(field);
      else room.entries.set(field, { count: after, expiresAt: now + update.ttlMs });
      bump(userId, after - before);
    }
    const updates: PresenceDataChange[] = [];
    for (const [userId, json] of update.data ?? []) {
      if ((room.users.get(userId) ?? 0) <= 0) continue;
      if (update.mode === "restore" && room.data.has(userId)) continue;
      room.data.set(userId, json);
      const at = joined.get(userId);
      const change = at === undefined ? undefined : changes[at];
      if (change) changes[at as number] = changeOf(change.userId, change.before, change.after, json);
      else {
        const data = dataOf(json);
        if (data) updates.push({ userId, data });
      }
    }
    if (room.entries.size === 0) this.rooms.delete(update.room);
    else this.rooms.set(update.room, room);
    const result: PresenceResult = updates.length > 0 ? { changes, updates } : { changes };
    if (!update.withMembers) return result;
    // The expired entries are gone already: the users' totals are the members.
    const { members, total } = listMembers(room.users, room.data, update.membersLimit);
    return { ...result, members, membersTotal: total };
  }

  async updateMany(updates: PresenceUpdate[]): Promise<PresenceResult[]> {
    const results: PresenceResult[] = [];
    for (const update of updates) results.push(await this.update(update));
    return results;
  }

  async members(room: string, limit?: number): Promise<MembersRead> {
    const now = this.now();
    const known = this.rooms.get(room);
    const users = new Map<string, number>();
    for (const [field, entry] of known?.entries ?? []) {
      if (entry.expiresAt <= now) continue;
      const userId = userOf(field);
      users.set(userId, (users.get(userId) ?? 0) + entry.count);
    }
    return listMembers(users, known?.data ?? new Map(), limit);
  }
}

/** A room's users (user → connections) as members with their data: at most `limit` listed (all when absent), and how many. */
function listMembers(users: Map<string, number>, data: Map<string, string>, limit?: number): MembersRead {
  const all = [...users];
  const listed = limit === undefined ? all : all.slice(0, limit);
  return {
    members: listed.map(([userId, connections]) => member(userId, connections, data.get(userId))),
    total: all.length,
  };
}
