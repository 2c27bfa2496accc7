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
 * KEYS: session, token. ARGV: sid, token ttl ms, session idle ttl ms.
 * Renews the session (a token request is activity) and stores token → sid.
 * Returns 1 when minted, 0 when the session is gone.
 */
export const MINT_TOKEN = `${RENEW}
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

/** KEYS: token. ARGV: session key prefix. Returns nil, {sid} or {sid, session}. */
export const CONSUME_TOKEN = `
local sid = redis.call('GETDEL', KEYS[1])
if not sid then return nil end
local session = redis.call('GET', ARGV[1] .. sid)
if not session then return {sid} end
return {sid, session}
`;
