/**
 * Lua for presence in Redis. Per room four keys in one slot: counts (hash
 * instance\nuser → n), expiries (zset instance\nuser by expiry ms), users
 * (hash user → fleet-wide total) and data (hash user → its presence data as
 * JSON; only while the user is present, and only once some was set). The same
 * rules as the in-process twin (MemoryPresenceStore in presence.ts).
 */

/** The time in ms (Redis `TIME`, the one clock every instance shares), and the one way members are listed. */
const COMMON = `
local function now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
-- A room's users (hash user -> total), each less what \`expired\` (user -> n) takes: at most \`limit\`
-- listed (-1: all), flat { user, n, data ('' for none), ... }, and how many there are. HSCAN may repeat
-- a field: listed once.
local function list_members(users, datas, limit, expired)
  local gone = 0
  for uid, c in pairs(expired) do
    local n = tonumber(redis.call('HGET', users, uid) or '0')
    if n > 0 and n - c <= 0 then gone = gone + 1 end
  end
  local total = redis.call('HLEN', users) - gone
  local members, listed, seen, cursor = {}, 0, {}, '0'
  repeat
    local page = redis.call('HSCAN', users, cursor, 'COUNT', 100)
    cursor = page[1]
    for k = 1, #page[2], 2 do
      local uid = page[2][k]
      local n = tonumber(page[2][k + 1]) - (expired[uid] or 0)
      if n > 0 and not seen[uid] and (limit < 0 or listed < limit) then
        seen[uid] = true
        listed = listed + 1
        table.insert(members, uid)
        table.insert(members, n)
        table.insert(members, redis.call('HGET', datas, uid) or '')
      end
    end
  until cursor == '0' or (limit >= 0 and listed >= limit)
  return members, total
end
`;

/**
 * KEYS: per room, counts, expiries, users, data. ARGV: per room, ttl ms, mode
 * (add|set|restore: restore adds as add does, and sets data only where a present
 * user has none), members limit (-2: none, -1: all), entry count, then field, user,
 * n triples, then a data count and user, JSON pairs. Drops expired entries
 * first, then applies the room's entries, then the data of users present.
 * A user gone (its total 0) loses its data. Returns per room
 * { {user, before, after, data ('' for none), …}, members (flat), total, {user, data, …} }:
 * a change carries the data a user joined with or left with, the last list the
 * data set for users already present (updates).
 */
export const PRESENCE_UPDATE = `${COMMON}
local nowMs = now_ms()
local results = {}
local a = 1
for r = 1, #KEYS / 4 do
  local counts, expiries, users, datas = KEYS[4 * r - 3], KEYS[4 * r - 2], KEYS[4 * r - 1], KEYS[4 * r]
  local ttl, mode, limit, n = tonumber(ARGV[a]), ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  local out, joined, updated = {}, {}, {}
  local function bump(uid, delta)
    if delta == 0 then return end
    local before = tonumber(redis.call('HGET', users, uid) or '0')
    local after = before + delta
    local data = ''
    if after <= 0 then
      after = 0
      redis.call('HDEL', users, uid)
      data = redis.call('HGET', datas, uid) or ''
      redis.call('HDEL', datas, uid)
    else
      redis.call('HSET', users, uid, after)
    end
    if before ~= after then
      table.insert(out, uid)
      table.insert(out, before)
      table.insert(out, after)
      table.insert(out, data)
      if before == 0 then joined[uid] = #out end
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
    if mode ~= 'set' then after = before + c end
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
  local d = tonumber(ARGV[a] or '0') or 0
  a = a + 1
  for _ = 1, d do
    local uid, json = ARGV[a], ARGV[a + 1]
    a = a + 2
    local present = tonumber(redis.call('HGET', users, uid) or '0') > 0
    if present and mode == 'restore' then
      present = redis.call('HSETNX', datas, uid, json) == 1
    elseif present then
      redis.call('HSET', datas, uid, json)
    end
    if present then
      if joined[uid] then
        out[joined[uid]] = json
      else
        table.insert(updated, uid)
        table.insert(updated, json)
      end
    end
  end
  if redis.call('ZCARD', expiries) == 0 then
    redis.call('DEL', counts, expiries, users, datas)
  else
    redis.call('PEXPIRE', counts, ttl)
    redis.call('PEXPIRE', expiries, ttl)
    redis.call('PEXPIRE', users, ttl)
    redis.call('PEXPIRE', datas, ttl)
  end
  local members, total = {}, 0
  -- The expired entries are gone already: nothing to take off.
  if limit ~= -2 then members, total = list_members(users, datas, limit, {}) end
  results[r] = { out, members, total, updated }
end
return results
`;

/**
 * KEYS: counts, expiries, users, data (as above). ARGV: limit (-1: all). Reads only:
 * users whose entries all expired are left out, counts lessened by expired
 * entries. Returns { members (flat, at most limit), total }.
 */
export const PRESENCE_READ = `#!lua flags=no-writes
${COMMON}
local expired = {}
for _, field in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms())) do
  local cut = string.find(field, '\\n', 1, true)
  if cut then
    local uid = string.sub(field, cut + 1)
    expired[uid] = (expired[uid] or 0) + tonumber(redis.call('HGET', KEYS[1], field) or '0')
  end
end
local members, total = list_members(KEYS[3], KEYS[4], tonumber(ARGV[1]), expired)
return { members, total }
`;
