import type { Redis } from "ioredis";
import type { AppendedEvent, HistoryLimits, HistoryStore, StreamEntry, StreamRead } from "./types.js";

/** Pub/sub channel of appended events. */
export const EVENTS_CHANNEL = "tether:events";

const NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * KEYS: stream, last-id key. ARGV: event, data, max length, window ms, last-id ttl ms, channel, stream name.
 * XADD and PUBLISH in one script: every instance receives a stream's events in stream order.
 */
const APPEND = `${NOW_MS}
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], '*', 'e', ARGV[1], 'd', ARGV[2])
redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', now - tonumber(ARGV[4])))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], id, 'PX', ARGV[5])
redis.call('PUBLISH', ARGV[6], cjson.encode({ARGV[7], id, ARGV[1], ARGV[2]}))
return id
`;

/** KEYS: stream, last-id key. ARGV: exclusive start ("(id"), count, window ms. */
const READ_AFTER = `${NOW_MS}
if redis.call('EXISTS', KEYS[1]) == 0 then
  local last = redis.call('GET', KEYS[2]) or '0-0'
  return {last, last, 0, {}}
end
redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', now - tonumber(ARGV[3])))
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local last, maxDeleted = '0-0', '0-0'
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then last = info[i + 1] end
  if info[i] == 'max-deleted-entry-id' then maxDeleted = info[i + 1] end
end
return {last, maxDeleted, redis.call('XLEN', KEYS[1]), redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])}
`;

type RawEntry = [string, string[]];

interface HistoryRedis extends Redis {
  tetherAppend(stream: string, lastKey: string, ...args: (string | number)[]): Promise<string>;
  tetherReadAfter(
    stream: string,
    lastKey: string,
    after: string,
    count: number,
    windowMs: number,
  ): Promise<[string, string, number, RawEntry[]]>;
}

const streamKey = (stream: string) => `tether:stream:${stream}`;
const lastIdKey = (stream: string) => `tether:stream-last:${stream}`;

function toEntry([offset, fields]: RawEntry): StreamEntry {
  return { offset, event: fields[1] ?? "", data: fields[3] ?? "{}" };
}

/** Event history in Redis Streams, one capped stream per target. */
export class RedisHistoryStore implements HistoryStore {
  private readonly client: HistoryRedis;

  /** @param sub a subscriber connection (the adapter's may be shared: other channels are ignored). */
  constructor(
    client: Redis,
    private readonly sub: Redis,
    private readonly limits: HistoryLimits,
  ) {
    client.defineCommand("tetherAppend", { numberOfKeys: 2, lua: APPEND });
    client.defineCommand("tetherReadAfter", { numberOfKeys: 2, lua: READ_AFTER });
    this.client = client as HistoryRedis;
  }

  append(stream: string, event: string, data: string): Promise<string> {
    const { maxLength, windowMs, lastIdTtlMs } = this.limits;
    return this.client.tetherAppend(
      streamKey(stream),
      lastIdKey(stream),
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
    return (await this.client.get(lastIdKey(stream))) ?? "0-0";
  }

  async readAfter(stream: string, after: string, count: number): Promise<StreamRead> {
    const [last, maxDeleted, length, entries] = await this.client.tetherReadAfter(
      streamKey(stream),
      lastIdKey(stream),
      `(${after}`,
      count,
      this.limits.windowMs,
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
