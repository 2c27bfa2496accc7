/**
 * Lua scripts: each auth step on the hot path is one atomic round trip.
 * Keys not in KEYS (the session key in consumeToken) make these standalone-only.
 */

/**
 * Renews a session's idle TTL without passing its absolute cap (`capAt`, epoch
 * ms, stored in the session). Shared by the scripts below.
 */
const RENEW = `
local function renew(key, idleMs)
  local session = redis.call('GET', key)
  if not session then return false end
  local ok, data = pcall(cjson.decode, session)
  local capAt = ok and type(data) == 'table' and tonumber(data.capAt) or nil
  local now = redis.call('TIME')
  local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local ttl = tonumber(idleMs)
  if capAt then ttl = math.min(ttl, capAt - nowMs) end
  if ttl <= 0 then
    redis.call('DEL', key)
    return false
  end
  redis.call('PEXPIRE', key, ttl)
  return true
end
`;

/**
 * A rate limit counted in the same script as the work it guards (one round
 * trip instead of two). The same key, count and window as rate-limiter-flexible's
 * RateLimiterRedis (a fixed window of `secs` from the first action), so both
 * can count one key side by side (a rolling upgrade). Returns the ms until the
 * window ends when the count is past `points`, else false.
 */
const CHARGE = `
local function charge(key, points, secs)
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, secs) end
  if n <= tonumber(points) then return false end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    -- A count without a window (never one of ours): give it one, as rate-limiter-flexible does.
    redis.call('EXPIRE', key, secs)
    ttl = tonumber(secs) * 1000
  end
  return math.max(1, ttl)
end
`;

/**
 * KEYS: session, token[, limit]. ARGV: sid, token ttl ms, session idle ttl ms[,
 * limit points, limit window s]. With a limit key, the token request is counted
 * first (limited: nothing is minted). Renews the session (a token request is
 * activity) and stores token → sid.
 * Returns 1 when minted, 0 when the session is gone, -ms when limited.
 */
export const MINT_TOKEN = `${RENEW}${CHARGE}
if KEYS[3] then
  local limited = charge(KEYS[3], ARGV[4], ARGV[5])
  if limited then return -limited end
end
if not renew(KEYS[1], ARGV[3]) then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
`;

/** KEYS: sessions. ARGV: idle ttl ms. Renews each; returns the indexes (1-based) of those gone. */
export const RENEW_SESSIONS = `${RENEW}
local gone = {}
for i, key in ipairs(KEYS) do
  if not renew(key, ARGV[1]) then table.insert(gone, i) end
end
return gone
`;

/**
 * With the session found, the head of its user's stream too (ARGV[2] is the
 * meta key prefix of user streams): a fresh connect needs no second round trip.
 */
const SESSION_AND_HEAD = `
local function session_and_head(sid, sessionKey, metaPrefix)
  local session = redis.call('GET', sessionKey)
  if not session then return {sid} end
  local ok, data = pcall(cjson.decode, session)
  if not ok or type(data) ~= 'table' or type(data.userId) ~= 'string' then return {sid, session} end
  local head = redis.call('HMGET', metaPrefix .. data.userId .. '}', 'last', 'epoch')
  return {sid, session, head[1] or '0-0', head[2] or ''}
end
`;

/**
 * Counts the handshake limits given as KEYS[first..] with their (points, window s)
 * pairs in ARGV from `argAt` on, every one of them (as when each is its own call).
 * Returns the ms of the first one past its points, or false.
 */
const CHARGE_ALL = `${CHARGE}
local function charge_all(first, argAt)
  local limited = false
  for i = first, #KEYS do
    local ms = charge(KEYS[i], ARGV[argAt], ARGV[argAt + 1])
    if ms and not limited then limited = ms end
    argAt = argAt + 2
  end
  return limited
end
`;

/**
 * KEYS: token[, limits…]. ARGV: session key prefix, user-stream meta key prefix[,
 * points and window s of each limit]. The limits are counted, and the token spent,
 * whatever either finds (a handshake over its limit still uses its token up).
 * Returns nil, {sid}, {sid, session} or {sid, session, last, epoch}; {ms} when limited.
 */
export const CONSUME_TOKEN = `${SESSION_AND_HEAD}${CHARGE_ALL}
local limited = charge_all(2, 3)
local sid = redis.call('GETDEL', KEYS[1])
if limited then return {limited} end
if not sid then return nil end
return session_and_head(sid, ARGV[1] .. sid, ARGV[2])
`;

/**
 * KEYS: ticket nonce[, limits…]. ARGV: ms until the ticket expires, sid, session key
 * prefix, user-stream meta key prefix[, points and window s of each limit]. Single
 * use: the nonce is set NX until the ticket would expire anyway, whatever the limits
 * find. Returns nil (used) or as CONSUME_TOKEN.
 */
export const CONSUME_TICKET = `${SESSION_AND_HEAD}${CHARGE_ALL}
local limited = charge_all(2, 5)
local fresh = redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1])
if limited then return {limited} end
if not fresh then return nil end
return session_and_head(ARGV[2], ARGV[3] .. ARGV[2], ARGV[4])
`;

/**
 * KEYS: session, ended marker. ARGV: session JSON, ttl ms. Writes a host-issued
 * session unless it was ended. Returns 1 when written, 0 when ended.
 */
export const PUT_HOST_SESSION = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

/** KEYS: session, ended marker. ARGV: marker ttl ms. Marks the session ended, then deletes it. */
export const END_HOST_SESSION = `
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
redis.call('DEL', KEYS[1])
return 1
`;
