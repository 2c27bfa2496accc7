import { EventEmitter } from "node:events";
import { compareIds, ZERO_ID } from "./stream-id.js";
import type { AppendedEvent, HistoryLimits, HistoryStore, StreamEntry, StreamRead } from "./types.js";

interface MemoryStream {
  entries: StreamEntry[];
  last: string;
  maxDeleted: string;
  /** Epoch ms of the last append: the stream expires a window after it. */
  touchedAt: number;
}

/** The in-process twin of the Redis Streams history: same trimming, same order. */
export class MemoryHistoryStore implements HistoryStore {
  private readonly streams = new Map<string, MemoryStream>();
  private readonly bus = new EventEmitter();

  constructor(private readonly limits: HistoryLimits) {}

  /** Stream ids as Redis makes them: ms time, then a sequence within the ms. */
  private nextId(stream: MemoryStream): string {
    const now = Date.now();
    const [lastMs = 0, lastSeq = 0] = stream.last.split("-").map(Number);
    return now > lastMs ? `${now}-0` : `${lastMs}-${lastSeq + 1}`;
  }

  private trim(stream: MemoryStream): void {
    const minId = `${Date.now() - this.limits.windowMs}-0`;
    const keepFrom = Math.max(
      stream.entries.length - this.limits.maxLength,
      stream.entries.findIndex((entry) => compareIds(entry.offset, minId) >= 0),
    );
    const removed = keepFrom < 0 ? stream.entries.length : keepFrom;
    if (removed === 0) return;
    stream.maxDeleted = stream.entries[removed - 1]?.offset ?? stream.maxDeleted;
    stream.entries.splice(0, removed);
  }

  /** The stream, unless it expired (then only its last id is remembered, like the Redis key). */
  private live(name: string): MemoryStream | undefined {
    const stream = this.streams.get(name);
    if (stream && Date.now() - stream.touchedAt > this.limits.windowMs) {
      this.trim(stream);
      stream.maxDeleted = stream.last;
    }
    return stream;
  }

  async append(name: string, event: string, data: string): Promise<string> {
    const stream = this.live(name) ?? { entries: [], last: ZERO_ID, maxDeleted: ZERO_ID, touchedAt: 0 };
    this.streams.set(name, stream);
    const offset = this.nextId(stream);
    stream.entries.push({ offset, event, data });
    stream.last = offset;
    stream.touchedAt = Date.now();
    this.trim(stream);
    this.bus.emit("appended", { stream: name, offset, event, data } satisfies AppendedEvent);
    return offset;
  }

  async lastId(name: string): Promise<string> {
    return this.streams.get(name)?.last ?? ZERO_ID;
  }

  async readAfter(name: string, after: string, count: number): Promise<StreamRead> {
    const stream = this.live(name);
    if (!stream) return { last: ZERO_ID, maxDeleted: ZERO_ID, length: 0, entries: [] };
    this.trim(stream);
    const entries = stream.entries.filter((entry) => compareIds(entry.offset, after) > 0).slice(0, count);
    return { last: stream.last, maxDeleted: stream.maxDeleted, length: stream.entries.length, entries };
  }

  async subscribe(handler: (event: AppendedEvent) => void): Promise<void> {
    this.bus.on("appended", handler);
  }
}
