import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryHistoryStore } from "../src/store/history-memory.js";
import { RedisHistoryStore } from "../src/store/history-redis.js";
import { compareIds } from "../src/store/stream-id.js";
import type { AppendedEvent, HistoryLimits, HistoryStore } from "../src/store/types.js";
import { startRedis, type TestRedis } from "./helpers/redis.js";
import { waitFor } from "./helpers/wait.js";

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => redis?.close());

const LIMITS: HistoryLimits = { windowMs: 60_000, maxLength: 5, lastIdTtlMs: 60_000 };
const SHORT_WINDOW: HistoryLimits = { windowMs: 300, maxLength: 100, lastIdTtlMs: 60_000 };

const implementations: [string, (limits: HistoryLimits) => HistoryStore][] = [
  ["redis", (limits) => new RedisHistoryStore(redis.client(), redis.client(), limits)],
  ["embedded", (limits) => new MemoryHistoryStore(limits)],
];

/** One suite, both implementations (the Redis Streams store and its in-process twin). */
describe.each(implementations)("HistoryStore on %s", (_name, make) => {
  const stream = () => `user:test-${Math.random().toString(36).slice(2)}`;

  it("appends with increasing offsets and fans each event out in order", async () => {
    const store = make(LIMITS);
    const seen: AppendedEvent[] = [];
    await store.subscribe((event) => seen.push(event));
    const s = stream();
    const offsets: string[] = [];
    for (let i = 0; i < 4; i++) offsets.push(await store.append(s, "tick", JSON.stringify({ i })));
    for (let i = 1; i < offsets.length; i++) expect(compareIds(offsets[i]!, offsets[i - 1]!)).toBeGreaterThan(0);
    await waitFor("four fanned-out events", () => seen.filter((e) => e.stream === s).length === 4);
    expect(seen.filter((e) => e.stream === s).map((e) => e.offset)).toEqual(offsets);
    expect(await store.lastId(s)).toBe(offsets.at(-1));
  });

  it("reads after an offset, paged, oldest first", async () => {
    const store = make(LIMITS);
    const s = stream();
    const offsets: string[] = [];
    for (let i = 0; i < 5; i++) offsets.push(await store.append(s, "tick", JSON.stringify({ i })));
    const read = await store.readAfter(s, offsets[1]!, 2);
    expect(read.entries.map((e) => e.offset)).toEqual(offsets.slice(2, 4));
    expect(read.entries[0]).toEqual({ offset: offsets[2], event: "tick", data: '{"i":2}' });
    expect(read.last).toBe(offsets[4]);
    expect(read.maxDeleted).toBe("0-0");
  });

  it("caps a stream's length and reports the newest deleted id", async () => {
    const store = make(LIMITS);
    const s = stream();
    const offsets: string[] = [];
    for (let i = 0; i < 8; i++) offsets.push(await store.append(s, "tick", "{}"));
    const read = await store.readAfter(s, "0-0", 100);
    expect(read.length).toBe(5);
    expect(read.entries.map((e) => e.offset)).toEqual(offsets.slice(3));
    expect(read.maxDeleted).toBe(offsets[2]);
  });

  it("drops entries older than the window, and remembers the last id when the stream is gone", async () => {
    const store = make(SHORT_WINDOW);
    const s = stream();
    const last = await store.append(s, "tick", "{}");
    await waitFor("the window to pass", async () => (await store.readAfter(s, "0-0", 10)).length === 0, {
      timeoutMs: 5_000,
    });
    const read = await store.readAfter(s, "0-0", 10);
    expect(read.last).toBe(last);
    expect(compareIds(read.maxDeleted, "0-0")).toBeGreaterThan(0);
  });

  it("an empty, never-used stream reads as offset 0-0", async () => {
    const store = make(LIMITS);
    expect(await store.readAfter(stream(), "0-0", 10)).toEqual({
      last: "0-0",
      maxDeleted: "0-0",
      length: 0,
      entries: [],
    });
  });
});
