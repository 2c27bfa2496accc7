import { APPEND, NEW_EPOCH_IF_BEHIND, READ_AFTER } from "./history-scripts.js";
import type { RedisClient } from "./redis-connection.js";
import type {
  AppendedEvent,
  Clock,
  HistoryLimits,
  HistoryStore,
  HistorySubscriber,
  StreamEntry,
  StreamHead,
  StreamRead,
} from "./types.js";

/** Pub/sub channel of appended events. */
export const EVENTS_CHANNEL = "tether:events";

type RawEntry = [string, string[]];

interface HistoryScripts {
  tetherAppend(stream: string, metaKey: string, ...args: (string | number)[]): Promise<[string, string]>;
  tetherReadAfter(
    stream: string,
    metaKey: string,
    ...args: (string | number)[]
  ): Promise<[string, string, string, number, RawEntry[]]>;
  tetherNewEpochIfBehind(metaKey: string, epoch: string, seen: string): Promise<[string, string]>;
}

// One hash tag for both keys of a stream: a script touching both stays in one Redis Cluster slot.
const streamKey = (stream: string) => `tether:stream:{${stream}}`;
const metaKey = (stream: string) => `tether:stream-meta:{${stream}}`;

function toEntry([id, fields]: RawEntry): StreamEntry {
  return { id, event: fields[1] ?? "", data: fields[3] ?? "{}" };
}

/** A fanned-out message; undefined when it is not one (another writer on the channel). */
function parseMessage(message: string): AppendedEvent | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 6 || !parsed.every((part) => typeof part === "string")) return;
  const [stream, id, prev, epoch, event, data] = parsed as string[];
  return { stream: stream!, id: id!, prev: prev!, epoch: epoch!, event: event!, data: data! };
}

/** Event history in Redis Streams, one capped stream per target. */
export class RedisHistoryStore implements HistoryStore {
  private readonly client: RedisClient & HistoryScripts;
  /** Passed to the scripts as "now"; "" lets Redis TIME decide (production). */
  private readonly now: () => string;

  /**
   * @param sub a subscriber connection (the adapter's may be shared: other channels are ignored).
   * @param clock tests only: a clock to step instead of Redis TIME.
   */
  constructor(
    client: RedisClient,
    private readonly sub: RedisClient,
    private readonly limits: HistoryLimits,
    clock?: Clock,
  ) {
    client.defineCommand("tetherAppend", { numberOfKeys: 2, lua: APPEND });
    client.defineCommand("tetherReadAfter", { numberOfKeys: 2, lua: READ_AFTER });
    client.defineCommand("tetherNewEpochIfBehind", { numberOfKeys: 1, lua: NEW_EPOCH_IF_BEHIND });
    this.client = client as RedisClient & HistoryScripts;
    this.now = clock ? () => String(Math.floor(clock())) : () => "";
  }

  async append(stream: string, event: string, data: string): Promise<{ id: string; epoch: string }> {
    const { maxLength, windowMs, lastIdTtlMs } = this.limits;
    const [id, epoch] = await this.client.tetherAppend(
      streamKey(stream),
      metaKey(stream),
      event,
      data,
      maxLength,
      windowMs,
      lastIdTtlMs,
      EVENTS_CHANNEL,
      stream,
      this.now(),
    );
    return { id, epoch };
  }

  async head(stream: string): Promise<StreamHead> {
    const [last, epoch] = await this.client.hmget(metaKey(stream), "last", "epoch");
    return { last: last ?? "0-0", epoch: epoch ?? "" };
  }

  async readAfter(stream: string, after: string, count: number): Promise<StreamRead> {
    const [last, epoch, maxDeleted, length, entries] = await this.client.tetherReadAfter(
      streamKey(stream),
      metaKey(stream),
      after,
      count,
      this.limits.windowMs,
      this.limits.maxLength,
      this.now(),
    );
    return { last, epoch, maxDeleted, length, entries: entries.map(toEntry) };
  }

  async newEpochIfBehind(stream: string, epoch: string, seen: string): Promise<StreamHead> {
    const [last, current] = await this.client.tetherNewEpochIfBehind(metaKey(stream), epoch, seen);
    return { last, epoch: current };
  }

  async subscribe(subscriber: HistorySubscriber): Promise<void> {
    this.sub.on("message", (channel: string, message: string) => {
      if (channel !== EVENTS_CHANNEL) return;
      const event = parseMessage(message);
      if (event) subscriber.onEvent(event);
    });
    await this.sub.subscribe(EVENTS_CHANNEL);
    // Pub/sub drops what is published while the connection is down: after each
    // reconnect, once subscribed again, the streams are re-read.
    this.sub.on("ready", () => {
      this.sub.subscribe(EVENTS_CHANNEL).then(
        () => subscriber.onResync(),
        () => {
          // Down again before the subscribe landed: the next "ready" retries.
        },
      );
    });
  }
}
