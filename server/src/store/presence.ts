import type { RoomMember } from "@tether/shared";
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

/** Rooms and entries in one script call at most: the heartbeat of a busy instance is chunked, no script runs long. */
export const PRESENCE_CHUNK = { rooms: 256, entries: 4_096 } as const;

/**
 * KEYS: per room, counts (hash instance\nuser → n), expiries (zset instance\nuser
 * by expiry ms), users (hash user → total). ARGV: per room, ttl ms, mode
 * (add|set), members limit (-2: none, -1: all), entry count, then field, user,
 * n triples. Returns per room { {user, before, after, …}, members (flat), total }.
 */
const PRESENCE_UPDATE = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local results = {}
local a = 1
for r = 1, #KEYS / 3 do
  local counts, expiries, users = KEYS[3 * r - 2], KEYS[3 * r - 1], KEYS[3 * r]
  local ttl, mode, limit, n = tonumber(ARGV[a]), ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  local out = {}
  local function bump(uid, delta)
    if delta == 0 then return end
    local before = tonumber(redis.call('HGET', users, uid) or '0')
    local after = before + delta
    if after <= 0 then
      after = 0
      redis.call('HDEL', users, uid)
    else
      redis.call('HSET', users, uid, after)
    end
    if before ~= after then
      table.insert(out, uid)
      table.insert(out, before)
      table.insert(out, after)
    end
  end
  for _, field in ipairs(redis.call('ZRANGEBYSCORE', expiries, '-inf', nowMs)) do
    local c = tonumber(redis.call('HGET', counts, field) or '0')
    redis.call('HDEL', counts, field)
    redis.call('ZREM', expiries, field)
    local cut = string.find(field, '\\n', 1, true)
    if cut then bump(string.sub(field, cut + 1), -c) end
  end
  for _ = 1, n do
    local field, uid, c = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
    a = a + 3
    local before = tonumber(redis.call('HGET', counts, field) or '0')
    local after = c
    if mode == 'add' then after = before + c end
    if after <= 0 then
      after = 0
      redis.call('HDEL', counts, field)
      redis.call('ZREM', expiries, field)
    else
      redis.call('HSET', counts, field, after)
      redis.call('ZADD', expiries, nowMs + ttl, field)
    end
    bump(uid, after - before)
  end
  if redis.call('ZCARD', expiries) == 0 then
    redis.call('DEL', counts, expiries, users)
  else
    redis.call('PEXPIRE', counts, ttl)
    redis.call('PEXPIRE', expiries, ttl)
    redis.call('PEXPIRE', users, ttl)
  end
  local members, total = {}, 0
  if limit ~= -2 then
    total = redis.call('HLEN', users)
    if limit == -1 or total <= limit then
      members = redis.call('HGETALL', users)
    else
      local cursor, seen = '0', {}
      repeat
        local page = redis.call('HSCAN', users, cursor, 'COUNT', 100)
        cursor = page[1]
        for k = 1, #page[2], 2 do
          local uid = page[2][k]
          if #members < 2 * limit and not seen[uid] then
            seen[uid] = true
            table.insert(members, uid)
            table.insert(members, page[2][k + 1])
          end
        end
      until cursor == '0' or #members >= 2 * limit
    end
  end
  results[r] = { out, members, total }
end
return results
`;

/**
 * KEYS: counts, expiries, users (as above). ARGV: limit (-1: all). Reads only:
 * users whose entries all expired are left out, counts lessened by expired
 * entries. Returns { members (flat, at most limit), total }.
 */
const PRESENCE_READ = `#!lua flags=no-writes
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local limit = tonumber(ARGV[1])
local expired = {}
for _, field in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', nowMs)) do
  local cut = string.find(field, '\\n', 1, true)
  if cut then
    local uid = string.sub(field, cut + 1)
    expired[uid] = (expired[uid] or 0) + tonumber(redis.call('HGET', KEYS[1], field) or '0')
  end
end
local gone = 0
for uid, c in pairs(expired) do
  local n = tonumber(redis.call('HGET', KEYS[3], uid) or '0')
  if n > 0 and n - c <= 0 then gone = gone + 1 end
end
local total = redis.call('HLEN', KEYS[3]) - gone
local members, listed, seen, cursor = {}, 0, {}, '0'
repeat
  local page = redis.call('HSCAN', KEYS[3], cursor, 'COUNT', 100)
  cursor = page[1]
  for k = 1, #page[2], 2 do
    local uid = page[2][k]
    local n = tonumber(page[2][k + 1]) - (expired[uid] or 0)
    if n > 0 and not seen[uid] and (limit < 0 or listed < limit) then
      seen[uid] = true
      listed = listed + 1
      table.insert(members, uid)
      table.insert(members, n)
    end
  end
until cursor == '0' or (limit >= 0 and listed >= limit)
return { members, total }
`;

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
      bump(field.slice(field.indexOf("\n") + 1), -entry.count);
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
    const all = [...room.users];
    const listed = update.membersLimit === undefined ? all : all.slice(0, update.membersLimit);
    return {
      changes,
      members: listed.map(([userId, connections]) => ({ userId, connections })),
      membersTotal: all.length,
    };
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
      const userId = field.slice(field.indexOf("\n") + 1);
      users.set(userId, (users.get(userId) ?? 0) + entry.count);
    }
    const all = [...users];
    const listed = limit === undefined ? all : all.slice(0, limit);
    return { members: listed.map(([userId, connections]) => ({ userId, connections })), total: all.length };
  }
}
