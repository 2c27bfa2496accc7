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
}

export interface PresenceResult {
  /** Every user whose fleet-wide count changed (expired entries of dead instances included), in order. */
  changes: PresenceChange[];
  members?: RoomMember[];
}

/**
 * Who is in each room, across the fleet: per room, each instance's connection
 * count per user, each entry with an expiry that its instance renews. Every
 * update first drops the expired entries (a dead instance's), atomically.
 */
export interface PresenceStore {
  update(update: PresenceUpdate): Promise<PresenceResult>;
}

const fieldOf = (instanceId: string, userId: string) => `${instanceId}\n${userId}`;

/**
 * KEYS: counts (hash instance\nuser → n), expiries (zset instance\nuser by expiry ms), users (hash user → total).
 * ARGV: ttl ms, mode (add|set), with members (1|0), then field, user, n triples.
 * Returns { {user, before, after, …}, members (flat HGETALL) or {} }.
 */
const PRESENCE_UPDATE = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[1])
local out = {}
local function bump(uid, delta)
  if delta == 0 then return end
  local before = tonumber(redis.call('HGET', KEYS[3], uid) or '0')
  local after = before + delta
  if after <= 0 then
    after = 0
    redis.call('HDEL', KEYS[3], uid)
  else
    redis.call('HSET', KEYS[3], uid, after)
  end
  if before ~= after then
    table.insert(out, uid)
    table.insert(out, before)
    table.insert(out, after)
  end
end
for _, field in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', nowMs)) do
  local n = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  redis.call('HDEL', KEYS[1], field)
  redis.call('ZREM', KEYS[2], field)
  local cut = string.find(field, '\\n', 1, true)
  if cut then bump(string.sub(field, cut + 1), -n) end
end
for i = 4, #ARGV, 3 do
  local field, uid, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local before = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  local after = n
  if ARGV[2] == 'add' then after = before + n end
  if after <= 0 then
    after = 0
    redis.call('HDEL', KEYS[1], field)
    redis.call('ZREM', KEYS[2], field)
  else
    redis.call('HSET', KEYS[1], field, after)
    redis.call('ZADD', KEYS[2], nowMs + ttl, field)
  end
  bump(uid, after - before)
end
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
else
  for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], ttl) end
end
local members = {}
if ARGV[3] == '1' then members = redis.call('HGETALL', KEYS[3]) end
return { out, members }
`;

type PresenceScripts = {
  tetherPresence(...args: (string | number)[]): Promise<[(string | number)[], string[]]>;
};

/** Presence in Redis: one script per update, the room's three keys in one slot (`{room:<name>}`). */
export class RedisPresenceStore implements PresenceStore {
  private readonly client: RedisClient & PresenceScripts;

  constructor(client: RedisClient) {
    client.defineCommand("tetherPresence", { numberOfKeys: 3, lua: PRESENCE_UPDATE });
    this.client = client as RedisClient & PresenceScripts;
  }

  async update(update: PresenceUpdate): Promise<PresenceResult> {
    const base = `tether:presence:{room:${update.room}}`;
    const args = update.entries.flatMap(([userId, n]) => [fieldOf(update.instanceId, userId), userId, n]);
    const [flat, members] = await this.client.tetherPresence(
      `${base}:counts`,
      `${base}:expiries`,
      `${base}:users`,
      update.ttlMs,
      update.mode,
      update.withMembers ? "1" : "0",
      ...args,
    );
    const changes: PresenceChange[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3)
      changes.push({ userId: String(flat[i]), before: Number(flat[i + 1]), after: Number(flat[i + 2]) });
    if (!update.withMembers) return { changes };
    const list: RoomMember[] = [];
    for (let i = 0; i + 1 < members.length; i += 2)
      list.push({ userId: String(members[i]), connections: Number(members[i + 1]) });
    return { changes, members: list };
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
    return { changes, members: [...room.users].map(([userId, connections]) => ({ userId, connections })) };
  }
}
