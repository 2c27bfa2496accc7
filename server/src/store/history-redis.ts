import type { ChainableCommander, Cluster, Redis } from "ioredis";
import { APPEND, NEW_EPOCH_IF_BEHIND, READ_AFTER, READ_BEFORE } from "./history-scripts.js";
import type { RedisClient } from "./redis-connection.js";
import { ShardSubscriptions } from "./shard-subscriptions.js";
import { SubscriptionProbe, shardConnections } from "./subscription-probe.js";
import type {
  AppendedEvent,
  AppendOptions,
  AppendResult,
  Clock,
  HistoryLimits,
  HistoryStore,
  HistorySubscriber,
  StreamEntry,
  StreamHead,
  StreamPage,
  StreamRead,
  SubscribeOptions,
} from "./types.js";

/**
 * The sharded pub/sub channel of one stream's appended events. Its hash tag is
 * the stream's keys' own, so on a Redis Cluster the append script publishes on
 * the shard that holds the stream, and only instances with a socket of that
 * stream listen.
 */
export const streamChannel = (stream: string) => `tether:ev:{${stream}}`;
const CHANNEL_PREFIX = "tether:ev:";
type RawEntry = [string, string[]];

interface HistoryScripts {
  tetherAppend(
    stream: string,
    metaKey: string,
    publishIdKey: string,
    ...args: (string | number)[]
  ): Promise<[string, string, AppendResult["status"]]>;
  tetherReadAfter(
    stream: string,
    metaKey: string,
    ...args: (string | number)[]
  ): Promise<[string, string, string, number, RawEntry[]]>;
  tetherReadBefore(
    stream: string,
    metaKey: string,
    ...args: (string | number)[]
  ): Promise<[string, string, number, RawEntry[]]>;
  tetherNewEpochIfBehind(metaKey: string, epoch: string, seen: string): Promise<[string, string]>;
}

// One hash tag for both keys of a stream: a script touching both stays in one Redis Cluster slot.
const streamKey = (stream: string) => `tether:stream:{${stream}}`;
/** Meta keys are `<prefix><stream>}`: the consume scripts build a user stream's from its user id. */
export const META_KEY_PREFIX = "tether:stream-meta:{";
const metaKey = (stream: string) => `${META_KEY_PREFIX}${stream}}`;
/**
 * One key per publish id, expiring with the window: Redis drops each on time by
 * itself (no scan or trim on the hot path), and the stream's hash tag keeps it in
 * the stream's slot. Costs ~250 bytes per publish (a UUID id) for the window.
 */
const publishIdKey = (stream: string, id: string) => `tether:publish-id:{${stream}}:${id}`;

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
  /** The streams' channels this instance listens to, kept so through drops and failovers. */
  private readonly channels: ShardSubscriptions;
  /** The listener's resync, for a re-send that lands without a reconnect (its window was unheard). */
  private onResync: (() => void) | undefined;

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
    client.defineCommand("tetherAppend", { numberOfKeys: 3, lua: APPEND });
    client.defineCommand("tetherReadAfter", { numberOfKeys: 2, lua: READ_AFTER });
    client.defineCommand("tetherReadBefore", { numberOfKeys: 2, lua: READ_BEFORE });
    client.defineCommand("tetherNewEpochIfBehind", { numberOfKeys: 1, lua: NEW_EPOCH_IF_BEHIND });
    this.client = client as RedisClient & HistoryScripts;
    // Subscribed again without a reconnect: what was published while it was not is read again.
    this.channels = new ShardSubscriptions(sub, () => this.onResync?.());
    this.now = clock ? () => String(Math.floor(clock())) : () => "";
  }

  async append(stream: string, event: string, data: string, options: AppendOptions = {}): Promise<AppendResult> {
    const { maxLength, windowMs, lastIdTtlMs } = this.limits;
    const publishId = options.id ?? "";
    const args = [
      streamKey(stream),
      metaKey(stream),
      publishIdKey(stream, publishId),
      event,
      data,
      maxLength,
      windowMs,
      lastIdTtlMs,
      streamChannel(stream),
      stream,
      this.now(),
      publishId,
    ] as const;
    const replicas = options.replicas ?? 0;
    if (replicas <= 0) {
      const [id, epoch, status] = await this.client.tetherAppend(...args);
      return { id, epoch, status };
    }
    // WAIT right behind the append on the same connection (a pipeline: on a Cluster, the
    // stream's node): it counts the replicas that have every write of it so far, ours included.
    // A duplicate waits too: the first attempt's write may not have reached them yet.
    const pipeline = this.client.pipeline() as ChainableCommander & {
      tetherAppend(...args: (string | number)[]): ChainableCommander;
    };
    pipeline.tetherAppend(...args);
    pipeline.wait(replicas, Math.max(1, options.replicaTimeoutMs ?? 1_000));
    const results = await pipeline.exec();
    const [appendError, appended] = results?.[0] ?? [new Error("Connection is closed.")];
    if (appendError) throw appendError;
    const [waitError, confirmed] = results?.[1] ?? [new Error("Connection is closed.")];
    if (waitError) throw waitError;
    if (Number(confirmed) < replicas)
      throw new Error(`NOREPLICAS ${Number(confirmed)} of ${replicas} replicas confirmed the write in time`);
    const [id, epoch, status] = appended as [string, string, AppendResult["status"]];
    return { id, epoch, status };
  }

  async head(stream: string): Promise<StreamHead> {
    const [last, epoch] = await this.client.hmget(metaKey(stream), "last", "epoch");
    return { last: last ?? "0-0", epoch: epoch ?? "" };
  }

  async readAfter(stream: string, after: string, count: number, maxBytes = 0): Promise<StreamRead> {
    const [last, epoch, maxDeleted, length, entries] = await this.client.tetherReadAfter(
      streamKey(stream),
      metaKey(stream),
      after,
      count,
      this.limits.windowMs,
      this.limits.maxLength,
      this.now(),
      maxBytes,
    );
    return { last, epoch, maxDeleted, length, entries: entries.map(toEntry) };
  }

  async readBefore(stream: string, before: string | undefined, count: number, maxBytes = 0): Promise<StreamPage> {
    const [last, epoch, more, newestFirst] = await this.client.tetherReadBefore(
      streamKey(stream),
      metaKey(stream),
      before ?? "",
      count,
      this.limits.windowMs,
      this.limits.maxLength,
      this.now(),
      maxBytes,
    );
    return { last, epoch, more: Number(more) === 1, entries: newestFirst.map(toEntry).reverse() };
  }

  async newEpochIfBehind(stream: string, epoch: string, seen: string): Promise<StreamHead> {
    const [last, current] = await this.client.tetherNewEpochIfBehind(metaKey(stream), epoch, seen);
    return { last, epoch: current };
  }

  /**
   * Listens to the watched streams' channels, and keeps the listening honest:
   * every reconnect of a subscriber connection re-reads every stream, and the
   * delivery probe (see SubscriptionProbe) turns a connection that stopped
   * delivering without closing into such a reconnect. Resolves to a stop.
   */
  async subscribe(subscriber: HistorySubscriber, options: SubscribeOptions = {}): Promise<() => void> {
    const probe =
      options.probeIntervalMs && options.probeIntervalMs > 0
        ? new SubscriptionProbe({
            sub: this.sub,
            publish: (channel, message) => this.client.spublish(channel, message),
            intervalMs: options.probeIntervalMs,
            onLost: (node, silentMs) => subscriber.onProbeLost?.(node, silentMs),
          })
        : undefined;
    const onMessage = (channel: string, message: string) => {
      if (probe?.take(channel, message) || !channel.startsWith(CHANNEL_PREFIX)) return;
      const event = parseMessage(message);
      if (event) subscriber.onEvent(event);
    };
    // Any traffic on the subscriber (the adapter's too) shows it alive: a late probe is then lag, not loss.
    const onOther = () => probe?.take("", "");
    // Pub/sub drops what is published while a connection is down, and ioredis subscribes again after a
    // reconnect. Every "ready" from now on is a reconnect (the connection was ready before this
    // listener existed; were it not, a re-read on the first connect is merely redundant): none may
    // be skipped. A PING answered on the same connection says the subscriptions are in place; then
    // every stream is re-read.
    const onReady = () => {
      probe?.reconnected();
      void this.channels.resend();
      (this.sub as Redis).ping().then(
        () => subscriber.onResync(),
        () => {
          // Down again before the PING landed: the next "ready" retries.
        },
      );
    };
    // A Cluster replaces a lost sharded subscriber and subscribes it again, then says so: each new
    // connection answers a PING after those subscriptions, then every stream is re-read.
    // (Un)subscriptions turned away meanwhile are sent first: their PINGs then answer after them.
    const onShardsReady = () => {
      probe?.reconnected();
      const resent = this.channels.resend();
      const connections = shardConnections(this.sub as Cluster);
      void Promise.allSettled([resent, ...connections.map((connection) => connection.ping())]).then(() =>
        subscriber.onResync(),
      );
    };
    this.sub.on("smessage", onMessage);
    this.sub.on("message", onOther);
    this.sub.on("ready", onReady);
    if (this.sub.isCluster) this.sub.on("subscribersReady", onShardsReady);
    probe?.start();
    this.onResync = () => subscriber.onResync();
    return () => {
      this.onResync = undefined;
      this.channels.close();
      probe?.stop();
      this.sub.off("smessage", onMessage);
      this.sub.off("message", onOther);
      this.sub.off("ready", onReady);
      this.sub.off("subscribersReady", onShardsReady);
    };
  }

  /**
   * Starts listening to a stream's channel; resolves once Redis confirmed the
   * subscription. On one Redis the streams watched within one turn of the event
   * loop (the connects of a burst) share one SSUBSCRIBE: one command and one write
   * instead of one per stream. (On a Cluster each channel may live on another shard.)
   */
  watch(stream: string): Promise<void> {
    return this.channels.subscribe(streamChannel(stream));
  }

  unwatch(stream: string): void {
    this.channels.unsubscribe(streamChannel(stream));
  }
}
