/**
 * Lua for the Redis Streams history. Every script reads the time once (Redis
 * `TIME`, the one clock every instance shares; tests may pass their own) and
 * applies the same rules as the in-process twin (history-memory.ts):
 * - ids are `<ms>-<seq>`, always after the stream's last id, even after it expired;
 * - entries older than the window are trimmed, and so is a prefix past the length cap;
 * - a stream idle for longer than the window is gone (the key's TTL, checked here too);
 * - the meta hash remembers `last`, `deleted` (the newest id removed: Redis does
 *   not record ids removed by trimming) and the stream's `epoch`. A new epoch
 *   starts when the meta hash itself is gone (the data was lost).
 */

/** `now` from ARGV (tests) or Redis TIME; ids compared as (ms, seq). */
const COMMON = `
local function time_now(given)
  if given ~= nil and given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function cmp(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if am ~= bm then return am < bm and -1 or 1 end
  if as ~= bs then return as < bs and -1 or 1 end
  return 0
end
-- The time in µs, plus a stream-specific tail so two streams never share an epoch.
local function new_epoch(key)
  local t = redis.call('TIME')
  return string.format('%x', tonumber(t[1]) * 1000000 + tonumber(t[2])) .. string.sub(redis.sha1hex(key), 1, 3)
end
-- Drops the stream when it was idle past the window (its TTL may not have fired yet).
local function expire_idle(stream, touched, now, window)
  if touched and now - tonumber(touched) > window then redis.call('DEL', stream) end
end
-- Trims to the window and the length cap; records the newest id removed.
local function trim(stream, meta, now, window, maxLen)
  local deleted = nil
  local minId = string.format('%d', now - window) .. '-0'
  if redis.call('XRANGE', stream, '-', '(' .. minId, 'COUNT', 1)[1] then
    deleted = redis.call('XREVRANGE', stream, '(' .. minId, '-', 'COUNT', 1)[1][1]
    redis.call('XTRIM', stream, 'MINID', minId)
  end
  local excess = redis.call('XLEN', stream) - maxLen
  if excess > 0 then
    local removed = redis.call('XRANGE', stream, '-', '+', 'COUNT', excess)
    deleted = removed[#removed][1]
    redis.call('XTRIM', stream, 'MAXLEN', maxLen)
  end
  if deleted then redis.call('HSET', meta, 'deleted', deleted) end
end
`;

/**
 * KEYS: stream, meta, publish id. ARGV: event, data, max length, window ms, meta ttl ms, channel, stream name,
 * now ('' = TIME), publish id ('' = none: KEYS[3] is then never touched).
 * XADD and SPUBLISH in one script: every instance that listens to the stream's
 * own channel (sharded pub/sub: on a Redis Cluster, the shard that holds the
 * stream) receives its events in stream order, each with the id before it
 * (`prev`) and the epoch.
 * A publish id is remembered for the window in a key of its own (same hash tag:
 * same slot), holding `<stream id> <epoch> <sha1 of event and data> <ms>`. While
 * it is remembered, a publish under it appends and publishes nothing and answers
 * the first id: `duplicate` for the same event and data, `conflict` for others.
 * An id from another epoch is forgotten: its event went with the lost data.
 * Returns {id, epoch, 'appended' | 'duplicate' | 'conflict'}.
 */
export const APPEND = `${COMMON}
local now = time_now(ARGV[8])
local window = tonumber(ARGV[4])
local meta = redis.call('HMGET', KEYS[2], 'last', 'epoch', 'touched')
local last, epoch = meta[1], meta[2]
local publishId = ARGV[9] or ''
-- Length-prefixed, so no other (event, data) pair hashes the same text.
local bodyHash = publishId ~= '' and redis.sha1hex(string.len(ARGV[1]) .. ':' .. ARGV[1] .. ARGV[2]) or ''
if publishId ~= '' then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    local firstId, firstEpoch, firstHash, at = string.match(seen, '^(%S+) (%S+) (%S+) (%d+)$')
    -- Checked here too: a key's TTL runs on Redis's clock, the window on the scripts' now.
    if firstId and firstEpoch == epoch and now - tonumber(at) <= window then
      return {firstId, firstEpoch, firstHash == bodyHash and 'duplicate' or 'conflict'}
    end
  end
end
if not last then
  -- No meta: a new stream, or one whose data was lost. Either way, a new epoch.
  last = '0-0'
  epoch = new_epoch(KEYS[1])
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch)
elseif not epoch then
  epoch = new_epoch(KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
expire_idle(KEYS[1], meta[3], now, window)
-- The stream expired: everything up to its last id is gone, and replays must say so.
if redis.call('EXISTS', KEYS[1]) == 0 and last ~= '0-0' then redis.call('HSET', KEYS[2], 'deleted', last) end
local lastMs, lastSeq = parse(last)
local id
if now > lastMs then id = string.format('%d', now) .. '-0'
else id = string.format('%d', lastMs) .. '-' .. string.format('%d', lastSeq + 1) end
redis.call('XADD', KEYS[1], id, 'e', ARGV[1], 'd', ARGV[2])
trim(KEYS[1], KEYS[2], now, window, tonumber(ARGV[3]))
redis.call('PEXPIREAT', KEYS[1], now + window)
redis.call('HSET', KEYS[2], 'last', id, 'touched', string.format('%d', now))
redis.call('PEXPIREAT', KEYS[2], now + tonumber(ARGV[5]))
if publishId ~= '' then
  redis.call('SET', KEYS[3], id .. ' ' .. epoch .. ' ' .. bodyHash .. ' ' .. string.format('%d', now), 'PXAT', now + window)
end
redis.call('SPUBLISH', ARGV[6], cjson.encode({ARGV[7], id, last, epoch, ARGV[1], ARGV[2]}))
return {id, epoch, 'appended'}
`;

/**
 * KEYS: stream, meta. ARGV: after id (exclusive), count, window ms, max length, now ('' = TIME),
 * max bytes ('' or 0 = no cap: the page ends before the entry that would pass it, but holds at least one).
 * Returns {last, epoch, newest deleted id, length, entries}. An expired stream lost everything up to its last id.
 */
export const READ_AFTER = `${COMMON}
local now = time_now(ARGV[5])
local window = tonumber(ARGV[3])
local meta = redis.call('HMGET', KEYS[2], 'last', 'epoch', 'touched', 'deleted')
local last, epoch = meta[1] or '0-0', meta[2] or ''
expire_idle(KEYS[1], meta[3], now, window)
if redis.call('EXISTS', KEYS[1]) == 0 then return {last, epoch, last, 0, {}} end
trim(KEYS[1], KEYS[2], now, window, tonumber(ARGV[4]))
local deleted = redis.call('HGET', KEYS[2], 'deleted') or '0-0'
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
local maxBytes = tonumber(ARGV[6] or '0') or 0
if maxBytes > 0 then
  local page, bytes = {}, 0
  for _, entry in ipairs(entries) do
    -- The event name and data ({'e', event, 'd', data}), as the in-process twin counts them.
    bytes = bytes + #entry[2][2] + #entry[2][4]
    if bytes > maxBytes and #page > 0 then break end
    table.insert(page, entry)
  end
  entries = page
end
return {last, epoch, deleted, redis.call('XLEN', KEYS[1]), entries}
`;

/**
 * KEYS: stream, meta. ARGV: before id (exclusive; '' = the newest), count, window ms, max length,
 * now ('' = TIME), max bytes ('' or 0 = no cap: the page ends before the entry that would pass it,
 * but holds at least one). The newest entries before the id, newest first (XREVRANGE), after the
 * same trims as READ_AFTER. Returns {last, epoch, more (1 when older entries remain), entries}.
 */
export const READ_BEFORE = `${COMMON}
local now = time_now(ARGV[5])
local window = tonumber(ARGV[3])
local meta = redis.call('HMGET', KEYS[2], 'last', 'epoch', 'touched')
local last, epoch = meta[1] or '0-0', meta[2] or ''
expire_idle(KEYS[1], meta[3], now, window)
if redis.call('EXISTS', KEYS[1]) == 0 then return {last, epoch, 0, {}} end
trim(KEYS[1], KEYS[2], now, window, tonumber(ARGV[4]))
-- Nothing is before 0-0 (and Redis refuses it as an exclusive end).
if ARGV[1] == '0-0' then return {last, epoch, 0, {}} end
local count = tonumber(ARGV[2])
local top = ARGV[1] == '' and '+' or '(' .. ARGV[1]
local entries = redis.call('XREVRANGE', KEYS[1], top, '-', 'COUNT', count + 1)
local maxBytes = tonumber(ARGV[6] or '0') or 0
local page, bytes, more = {}, 0, 0
for i, entry in ipairs(entries) do
  if i > count then more = 1 break end
  bytes = bytes + #entry[2][2] + #entry[2][4]
  if maxBytes > 0 and bytes > maxBytes and #page > 0 then more = 1 break end
  table.insert(page, entry)
end
return {last, epoch, more, page}
`;

/**
 * KEYS: meta. ARGV: epoch, id an instance delivered in that epoch.
 * Starts a new epoch when the stream is in that epoch and its last id is older
 * than what was delivered (the store rolled back). Returns {last, epoch}.
 */
export const NEW_EPOCH_IF_BEHIND = `${COMMON}
local meta = redis.call('HMGET', KEYS[1], 'last', 'epoch')
local last, epoch = meta[1] or '0-0', meta[2] or ''
if meta[1] and epoch == ARGV[1] and cmp(last, ARGV[2]) < 0 then
  epoch = new_epoch(KEYS[1])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'deleted', last)
end
return {last, epoch}
`;
