/**
 * Lua scripts of the auth store. On one Redis each operation is one script, one
 * atomic round trip: the multi-key scripts below (a key not in KEYS, as the
 * session key of a consume, makes them one-Redis-only). On a Redis Cluster the
 * same steps run one slot at a time: the one-key scripts (`CHARGE_LIMIT`, and
 * `RENEW_SESSIONS`, `HOST_GRANT`, `END_HOST_SESSION` given their first key only).
 */

/**
 * Renews a session's idle TTL without passing its absolute cap (`capAt`, epoch
 * ms, stored in the session). Shared by the scripts below. Returns false for a
 * session gone (or past its cap), else the session as stored and what it decoded to.
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
  return session, data
end
`;

/**
 * Counts one action under a rate limit: every limit Tether keeps in Redis is
 * counted by this function, alone (`CHARGE_LIMIT`) or inside the script of the
 * work it guards (one round trip for both). The same key, count and window as
 * rate-limiter-flexible's RateLimiterRedis (a fixed window of `secs` from the
 * first action), which instances of earlier releases count with: both can count
 * one key side by side (a rolling upgrade). Returns the ms until the window ends
 * when the count is past `points`, else false.
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

/** KEYS: limit. ARGV: points, window s. Returns the ms until the window ends when past the points, else 0. */
export const CHARGE_LIMIT = `${CHARGE}
return charge(KEYS[1], ARGV[1], ARGV[2]) or 0
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
local renewing = tonumber(ARGV[2]) or #KEYS
for i = 1, renewing do
  if not renew(KEYS[i], ARGV[1]) then table.insert(gone, i) end
end
-- The rest are only checked: one EXISTS for all of them, one per key only when some are gone.
if renewing < #KEYS and redis.call('EXISTS', unpack(KEYS, renewing + 1)) < #KEYS - renewing then
  for i = renewing + 1, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 0 then table.insert(gone, i) end
  end
end
return gone
`;

/**
 * With the session found, the head of its user's stream too (ARGV[2] is the
 * meta key prefix of user streams): a fresh connect needs no second round trip.
 */
const SESSION_AND_HEAD = `
local function with_head(sid, session, data, metaPrefix)
  if type(data) ~= 'table' or type(data.userId) ~= 'string' then return {sid, session} end
  local head = redis.call('HMGET', metaPrefix .. data.userId .. '}', 'last', 'epoch')
  return {sid, session, head[1] or '0-0', head[2] or ''}
end
local function session_and_head(sid, sessionKey, metaPrefix)
  local session = redis.call('GET', sessionKey)
  if not session then return {sid} end
  local ok, data = pcall(cjson.decode, session)
  return with_head(sid, session, ok and data, metaPrefix)
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
 * KEYS: session[, limits…]. ARGV: idle ttl ms, sid, user-stream meta key prefix[,
 * points and window s of each limit]. A handshake by session cookie: the limits
 * are counted, then the session renewed (a connect is activity, as a token request
 * is) and read with its user's head. Nothing is spent: the cookie is the credential.
 * Returns {ms} when limited, else as CONSUME_TOKEN ({sid}: the session is gone).
 */
export const ADMIT_SESSION = `${RENEW}${SESSION_AND_HEAD}${CHARGE_ALL}
local limited = charge_all(2, 4)
if limited then return {limited} end
-- The session renew read is the one the reply carries: one GET and one decode, not two.
local session, data = renew(KEYS[1], ARGV[1])
if not session then return {ARGV[2]} end
return with_head(ARGV[2], session, data, ARGV[3])
`;

/**
 * Keeps a key at least `ms` more from now: a TTL only ever grows, so no later step
 * shortens what an earlier one promised to remember. Returns the ms it is kept.
 */
const KEEP = `
local function keep(key, ms)
  ms = math.max(1, math.floor(ms))
  local ttl = redis.call('PTTL', key)
  if ttl >= ms then return ttl end
  redis.call('PEXPIRE', key, ms)
  return ms
end
`;

/**
 * A host-issued session as express-session stores one (cookie, userId, capAt), so every
 * reader of a session reads it too: the twin of `hostSessionJson`. The cookie's
 * `expires` is ISO 8601 in UTC (days to a civil date: Howard Hinnant's algorithm;
 * Redis's Lua has no os.date).
 */
const HOST_SESSION_JSON = `
local function iso8601(ms)
  local s = math.floor(ms / 1000)
  local days = math.floor(s / 86400)
  local rem = s - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d,
    math.floor(rem / 3600), math.floor((rem % 3600) / 60), rem % 60, ms % 1000)
end
local function host_session_json(userId, capAt, now)
  return cjson.encode({
    cookie = { originalMaxAge = capAt - now, expires = iso8601(capAt), httpOnly = true, path = '/' },
    userId = userId,
    capAt = capAt,
  })
end
`;

/**
 * The TS twin of the scripts' host session JSON (where a host session is written
 * step by step, on a Redis Cluster and in process, it is written from here).
 */
export function hostSessionJson(userId: string, capAt: number, now: number): string {
  return JSON.stringify({
    cookie: { originalMaxAge: capAt - now, expires: new Date(capAt).toISOString(), httpOnly: true, path: "/" },
    userId,
    capAt,
  });
}

/**
 * A grant of a host-issued session (`tether.issueTokenFor`), checked against and
 * recorded in the session's record, a hash: `user` (the owner, set by the first grant),
 * `maxAt` (first grant + max age: the cap, never moved by later grants), `exp` (the
 * latest host expiry seen), `ended` ("1" once ended). The record outlives the session:
 * kept until the later of `maxAt` + ARGV[6] (credentials bound to the session, tokens
 * and tickets, live that long after it) and `exp` (the host can present its credential
 * until then), so neither the cap nor the end nor the owner lapses while any of them
 * could be presented.
 *
 * KEYS: record[, session, ended marker of earlier releases]. Without the session key
 * (Redis Cluster: it is in another slot) only the record is checked and updated, and
 * the caller writes the session. ARGV: user id, host expiry (epoch ms), now (epoch ms),
 * max age ms, idle ttl ms, ms credentials outlive the cap[, "1" when the caller found
 * the earlier releases' ended marker]. Refusals change nothing but the host expiry seen
 * (the owner's own: another user's grant changes nothing).
 * Returns {'ok', capAt, session ttl ms}, {'ended'}, {'expired'} or {'other-user'}.
 */
export const HOST_GRANT = `${KEEP}${HOST_SESSION_JSON}
local userId = ARGV[1]
local expiresAt = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local rec = redis.call('HMGET', KEYS[1], 'user', 'maxAt', 'exp', 'ended')
if rec[1] and rec[1] ~= userId then return {'other-user'} end
local maxAt = tonumber(rec[2]) or (now + tonumber(ARGV[4]))
local exp = math.max(tonumber(rec[3]) or 0, expiresAt)
local ended = rec[4] == '1' or ARGV[7] == '1' or (KEYS[3] ~= nil and redis.call('EXISTS', KEYS[3]) == 1)
redis.call('HSET', KEYS[1], 'user', userId, 'maxAt', maxAt, 'exp', exp)
if ended then redis.call('HSET', KEYS[1], 'ended', '1') end
keep(KEYS[1], math.max(maxAt + tonumber(ARGV[6]), exp) - now)
if ended then return {'ended'} end
local capAt = math.min(expiresAt, maxAt)
if capAt <= now then return {'expired'} end
local ttl = math.min(tonumber(ARGV[5]), capAt - now)
if KEYS[2] then redis.call('SET', KEYS[2], host_session_json(userId, capAt, now), 'PX', ttl) end
return {'ok', capAt, ttl}
`;

/**
 * Ends a host-issued session: marks its record ended and keeps it at least the max age
 * and at least until the latest host expiry seen (a credential the host still holds is
 * refused until then), then deletes the session.
 *
 * KEYS: record[, session, ended marker of earlier releases]. ARGV: now (epoch ms), max
 * age ms. Without the session key (Redis Cluster) the caller deletes it, after this.
 * Returns the ms the record is kept from now (the marker of earlier releases, when
 * given, is set for as long: instances not upgraded yet refuse too).
 */
export const END_HOST_SESSION = `${KEEP}
local now = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'ended', '1')
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp')) or 0
local ms = keep(KEYS[1], math.max(tonumber(ARGV[2]), exp - now))
if KEYS[3] then redis.call('SET', KEYS[3], '1', 'PX', ms) end
if KEYS[2] then redis.call('DEL', KEYS[2]) end
return ms
`;
