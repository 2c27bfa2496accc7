import type { RedisClient } from "./redis-connection.js";
import type { AppendedEvent, HistoryLimits, HistoryStore, StreamEntry, StreamRead } from "./types.js";

/** Pub/sub channel of appended events. */
export const EVENTS_CHANNEL = "tether:events";

const NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * Trims a stream to the window and the length cap, and records the newest id
 * trimmed in the meta hash (Redis does not track ids removed by trimming).
 * Both trims remove a prefix, so the newest removed id is the prefix's last.
 */
const TRIM = `
local function trim(stream, meta, minId, maxLen)
  local deleted = nil
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  -- Look backwards only when something is that old: XREVRANGE from below the first entry is slow.
  if first and redis.call('XRANGE', stream, '-', '(' .. minId, 'COUNT', 1)[1] then
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
 * KEYS: stream, meta hash. ARGV: event, data, max length, window ms, meta ttl ms, channel, stream name.
 * XADD and PUBLISH in one script: every instance receives a stream's events in stream order.
 */
const APPEND = `${NOW_MS}${TRIM}
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[1], 'd', ARGV[2])
trim(KEYS[1], KEYS[2], string.format('%d', now - tonumber(ARGV[4])), tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('HSET', KEYS[2], 'last', id)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PUBLISH', ARGV[6], cjson.encode({ARGV[7], id, ARGV[1], ARGV[2]}))
return id
`;

/**
 * KEYS: stream, meta hash. ARGV: exclusive start ("(id"), count, window ms, max length.
 * Returns {last, newest deleted id, length, entries}. An expired stream lost everything up to its last id.
 */
const READ_AFTER = `${NOW_MS}${TRIM}
local last = redis.call('HGET', KEYS[2], 'last') or '0-0'
if redis.call('EXISTS', KEYS[1]) == 0 then return {last, last, 0, {}} end
trim(KEYS[1], KEYS[2], string.format('%d', now - tonumber(ARGV[3])), tonumber(ARGV[4]))
local deleted = redis.call('HGET', KEYS[2], 'deleted') or '0-0'
return {last, deleted, redis.call('XLEN', KEYS[1]), redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])}
`;

type RawEntry = [string, string[]];

interface HistoryScripts {
  tetherAppend(stream: string, metaKey: string, ...args: (string | number)[]): Promise<string>;
  tetherReadAfter(
    stream: string,
    metaKey: string,
    after: string,
    count: number,
    windowMs: number,
    maxLength: number,
  ): Promise<[string, string, number, RawEntry[]]>;
}

// One hash tag for both keys of a stream: a script touching both stays in one Redis Cluster slot.
const streamKey = (stream: string) => `tether:stream:{${stream}}`;
const metaKey = (stream: string) => `tether:stream-meta:{${stream}}`;

function toEntry([offset, fields]: RawEntry): StreamEntry {
  return { offset, event: fields[1] ?? "", data: fields[3] ?? "{}" };
}

/** Event history in Redis Streams, one capped stream per target. */
export class RedisHistoryStore implements HistoryStore {
  private readonly client: RedisClient & HistoryScripts;

  /** @param sub a subscriber connection (the adapter's may be shared: other channels are ignored). */
  constructor(
    client: RedisClient,
    private readonly sub: RedisClient,
    private readonly limits: HistoryLimits,
  ) {
    client.defineCommand("tetherAppend", { numberOfKeys: 2, lua: APPEND });
    client.defineCommand("tetherReadAfter", { numberOfKeys: 2, lua: READ_AFTER });
    this.client = client as RedisClient & HistoryScripts;
  }

  append(stream: string, event: string, data: string): Promise<string> {
    const { maxLength, windowMs, lastIdTtlMs } = this.limits;
    return this.client.tetherAppend(
      streamKey(stream),
      metaKey(stream),
      event,
      data,
      maxLength,
      windowMs,
      lastIdTtlMs,
      EVENTS_CHANNEL,
      stream,
    );
  }

  async lastId(stream: string): Promise<string> {
    return (await this.client.hget(metaKey(stream), "last")) ?? "0-0";
  }

  async readAfter(stream: string, after: string, count: number): Promise<StreamRead> {
    const [last, maxDeleted, length, entries] = await this.client.tetherReadAfter(
      streamKey(stream),
      metaKey(stream),
      `(${after}`,
      count,
      this.limits.windowMs,
      this.limits.maxLength,
    );
    return { last, maxDeleted, length, entries: entries.map(toEntry) };
  }

  async subscribe(handler: (event: AppendedEvent) => void): Promise<void> {
    this.sub.on("message", (channel: string, message: string) => {
      if (channel !== EVENTS_CHANNEL) return;
      const [stream, offset, event, data] = JSON.parse(message) as [string, string, string, string];
      handler({ stream, offset, event, data });
    });
    await this.sub.subscribe(EVENTS_CHANNEL);
  }
}
