import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import { compareIds, ZERO_ID } from "@tether/shared";
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
} from "./types.js";

interface MemoryStream {
  entries: StreamEntry[];
  last: string;
  maxDeleted: string;
  epoch: string;
  /** Clock ms of the last append: the stream expires a window after it. */
  touchedAt: number;
  /** Publish id → its first publish, oldest first; dropped a window after it (as the Redis keys' TTL). */
  publishes: Map<string, RememberedPublish>;
}

interface RememberedPublish {
  id: string;
  epoch: string;
  /** Of the event and data, as the Redis script hashes them. */
  hash: string;
  at: number;
}

/** sha1 of the length-prefixed event and data: the APPEND script's hash. */
const bodyHash = (event: string, data: string) =>
  createHash("sha1")
    .update(`${Buffer.byteLength(event)}:${event}${data}`)
    .digest("hex");

let epochs = 0;
/** A new epoch: unique within this process (an embedded store lives and dies with it). */
const newEpoch = () => `${Date.now().toString(36)}${(++epochs).toString(36)}`.slice(-16);

/** The in-process twin of the Redis Streams history: the same rules (history-scripts.ts), the same order. */
export class MemoryHistoryStore implements HistoryStore {
  private readonly streams = new Map<string, MemoryStream>();
  private readonly bus = new EventEmitter();

  /** @param clock tests only: a clock to step. */
  constructor(
    private readonly limits: HistoryLimits,
    private readonly clock: Clock = Date.now,
  ) {}

  /** Stream ids as the Redis script makes them: ms time, then a sequence within the ms. */
  private nextId(last: string, now: number): string {
    const [lastMs = 0, lastSeq = 0] = last.split("-").map(Number);
    return now > lastMs ? `${now}-0` : `${lastMs}-${lastSeq + 1}`;
  }

  private trim(stream: MemoryStream, now: number): void {
    const minId = `${now - this.limits.windowMs}-0`;
    const firstKept = stream.entries.findIndex((entry) => compareIds(entry.id, minId) >= 0);
    const keepFrom = Math.max(
      stream.entries.length - this.limits.maxLength,
      firstKept < 0 ? stream.entries.length : firstKept,
    );
    if (keepFrom <= 0) return;
    stream.maxDeleted = stream.entries[keepFrom - 1]?.id ?? stream.maxDeleted;
    stream.entries.splice(0, keepFrom);
  }

  /** The stream, its entries dropped when it was idle past the window (only its last id is remembered). */
  private live(name: string, now: number): MemoryStream | undefined {
    const stream = this.streams.get(name);
    if (stream && stream.entries.length > 0 && now - stream.touchedAt > this.limits.windowMs) stream.entries = [];
    return stream;
  }

  async append(name: string, event: string, data: string, options: AppendOptions = {}): Promise<AppendResult> {
    const now = Math.floor(this.clock());
    const known = this.streams.get(name);
    const hash = options.id === undefined ? "" : bodyHash(event, data);
    if (known && options.id !== undefined) {
      this.forgetPublishes(known, now);
      const first = known.publishes.get(options.id);
      if (first && first.epoch === known.epoch) {
        return { id: first.id, epoch: first.epoch, status: first.hash === hash ? "duplicate" : "conflict" };
      }
    }
    const stream: MemoryStream = this.live(name, now) ?? {
      entries: [],
      last: ZERO_ID,
      maxDeleted: ZERO_ID,
      epoch: newEpoch(),
      touchedAt: 0,
      publishes: new Map(),
    };
    this.streams.set(name, stream);
    // The stream expired: everything up to its last id is gone, and replays must say so.
    if (stream.entries.length === 0 && stream.last !== ZERO_ID) stream.maxDeleted = stream.last;
    const prev = stream.last;
    const id = this.nextId(prev, now);
    stream.entries.push({ id, event, data });
    stream.last = id;
    stream.touchedAt = now;
    this.trim(stream, now);
    if (options.id !== undefined) {
      // Re-inserted at the end, so the map stays oldest first.
      stream.publishes.delete(options.id);
      stream.publishes.set(options.id, { id, epoch: stream.epoch, hash, at: now });
    }
    this.bus.emit("appended", { stream: name, id, prev, epoch: stream.epoch, event, data } satisfies AppendedEvent);
    return { id, epoch: stream.epoch, status: "appended" };
  }

  /** Drops the publish ids older than the window: memory stays bounded by a window of publishes. */
  private forgetPublishes(stream: MemoryStream, now: number): void {
    for (const [key, first] of stream.publishes) {
      if (now - first.at <= this.limits.windowMs) break;
      stream.publishes.delete(key);
    }
  }

  async head(name: string): Promise<StreamHead> {
    const stream = this.streams.get(name);
    return { last: stream?.last ?? ZERO_ID, epoch: stream?.epoch ?? "" };
  }

  async readAfter(name: string, after: string, count: number, maxBytes = 0): Promise<StreamRead> {
    const now = Math.floor(this.clock());
    const stream = this.live(name, now);
    if (!stream) return { last: ZERO_ID, epoch: "", maxDeleted: ZERO_ID, length: 0, entries: [] };
    const { last, epoch } = stream;
    if (stream.entries.length === 0) return { last, epoch, maxDeleted: last, length: 0, entries: [] };
    this.trim(stream, now);
    const entries = pageOf(stream.entries.filter((entry) => compareIds(entry.id, after) > 0).slice(0, count), maxBytes);
    return { last, epoch, maxDeleted: stream.maxDeleted, length: stream.entries.length, entries };
  }

  async readBefore(name: string, before: string | undefined, count: number, maxBytes = 0): Promise<StreamPage> {
    const now = Math.floor(this.clock());
    const stream = this.live(name, now);
    if (!stream) return { last: ZERO_ID, epoch: "", more: false, entries: [] };
    this.trim(stream, now);
    const older =
      before === undefined ? stream.entries : stream.entries.filter((entry) => compareIds(entry.id, before) < 0);
    const newestFirst = count <= 0 ? [] : pageOf(older.slice(-count).reverse(), maxBytes);
    const { last, epoch } = stream;
    return { last, epoch, more: older.length > newestFirst.length, entries: newestFirst.reverse() };
  }

  async newEpochIfBehind(name: string, epoch: string, seen: string): Promise<StreamHead> {
    const stream = this.streams.get(name);
    if (stream && stream.epoch === epoch && compareIds(stream.last, seen) < 0) {
      stream.epoch = newEpoch();
      stream.maxDeleted = stream.last;
    }
    return this.head(name);
  }

  /** In process every append reaches the one subscriber: nothing to route. */
  async watch(_stream: string): Promise<void> {}

  unwatch(_stream: string): void {}

  async subscribe(subscriber: HistorySubscriber): Promise<() => void> {
    // In process nothing is ever dropped: no resync, no probe.
    const listener = (event: AppendedEvent) => subscriber.onEvent(event);
    this.bus.on("appended", listener);
    return () => this.bus.off("appended", listener);
  }
}

/** The first entries whose event names and data add up to at most `maxBytes` (at least one; 0: all), as the Redis script counts them. */
function pageOf(entries: StreamEntry[], maxBytes: number): StreamEntry[] {
  if (maxBytes <= 0) return entries;
  let bytes = 0;
  const page: StreamEntry[] = [];
  for (const entry of entries) {
    bytes += Buffer.byteLength(entry.event) + Buffer.byteLength(entry.data);
    if (bytes > maxBytes && page.length > 0) break;
    page.push(entry);
  }
  return page;
}
