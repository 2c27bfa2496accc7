import { compareIds } from "@tether/shared";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryHistoryStore } from "../src/store/history-memory.js";
import { RedisHistoryStore } from "../src/store/history-redis.js";
import type { AppendedEvent, Clock, HistoryLimits, HistoryStore } from "../src/store/types.js";

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => redis?.close());

const LIMITS: HistoryLimits = { windowMs: 60_000, maxLength: 5, lastIdTtlMs: 60_000 };
const SHORT_WINDOW: HistoryLimits = { windowMs: 1_000, maxLength: 100, lastIdTtlMs: 60_000 };

const implementations: [string, (limits: HistoryLimits, clock?: Clock) => HistoryStore][] = [
  ["redis", (limits, clock) => new RedisHistoryStore(redis.client(), redis.client(), limits, clock)],
  ["embedded", (limits, clock) => new MemoryHistoryStore(limits, clock)],
];

/** A clock the test steps by hand: "past the window" without waiting for it. */
function steppedClock(): Clock & { advance(ms: number): void } {
  let now = Date.now();
  const advance = (ms: number) => {
    now += ms;
  };
  return Object.assign(() => now, { advance });
}

const ids = (events: { id: string }[]) => events.map((event) => event.id);

/** One suite, both implementations (the Redis Streams store and its in-process twin). */
describe.each(implementations)("HistoryStore on %s", (_name, make) => {
  const stream = () => `user:test-${Math.random().toString(36).slice(2)}`;

  it("appends with increasing ids and fans each event out in order, each naming the one before", async () => {
    const store = make(LIMITS);
    const seen: AppendedEvent[] = [];
    await store.subscribe({ onEvent: (event) => seen.push(event), onResync: () => {} });
    const s = stream();
    await store.watch(s);
    const appended: { id: string; epoch: string }[] = [];
    for (let i = 0; i < 4; i++) appended.push(await store.append(s, "tick", JSON.stringify({ i })));
    for (let i = 1; i < appended.length; i++)
      expect(compareIds(appended[i]!.id, appended[i - 1]!.id)).toBeGreaterThan(0);
    expect(new Set(appended.map((a) => a.epoch)).size).toBe(1);
    await waitFor("four fanned-out events", () => seen.filter((e) => e.stream === s).length === 4);
    const mine = seen.filter((e) => e.stream === s);
    expect(ids(mine)).toEqual(ids(appended));
    expect(mine.map((e) => e.prev)).toEqual(["0-0", ...ids(appended).slice(0, -1)]);
    expect(await store.head(s)).toEqual({ last: appended.at(-1)!.id, epoch: appended[0]!.epoch });
  });

  it("reads after an id, paged, oldest first", async () => {
    const store = make(LIMITS);
    const s = stream();
    const appended: string[] = [];
    for (let i = 0; i < 5; i++) appended.push((await store.append(s, "tick", JSON.stringify({ i }))).id);
    const read = await store.readAfter(s, appended[1]!, 2);
    expect(ids(read.entries)).toEqual(appended.slice(2, 4));
    expect(read.entries[0]).toEqual({ id: appended[2], event: "tick", data: '{"i":2}' });
    expect(read.last).toBe(appended[4]);
    expect(read.maxDeleted).toBe("0-0");
  });

  it("reads back the newest entries before an id, oldest first, paging back to the first", async () => {
    const store = make({ ...LIMITS, maxLength: 100 });
    const s = stream();
    const appended: string[] = [];
    for (let i = 0; i < 7; i++) appended.push((await store.append(s, "tick", JSON.stringify({ i }))).id);
    const newest = await store.readBefore(s, undefined, 3);
    expect(ids(newest.entries)).toEqual(appended.slice(4));
    expect(newest.entries[2]).toEqual({ id: appended[6], event: "tick", data: '{"i":6}' });
    expect(newest).toMatchObject({ last: appended[6], more: true });
    const older = await store.readBefore(s, newest.entries[0]!.id, 3);
    expect(ids(older.entries)).toEqual(appended.slice(1, 4));
    expect(older.more).toBe(true);
    const first = await store.readBefore(s, older.entries[0]!.id, 3);
    expect(ids(first.entries)).toEqual(appended.slice(0, 1));
    expect(first.more).toBe(false);
    // Exactly the count left: no more.
    expect((await store.readBefore(s, appended[3], 3)).more).toBe(false);
    expect((await store.readBefore(s, undefined, 0)).entries).toEqual([]);
  });

  it("a read back is bounded in bytes (one entry at least), and an empty stream reads as nothing", async () => {
    const store = make({ ...LIMITS, maxLength: 100 });
    const s = stream();
    const appended: string[] = [];
    // Each entry is 4 + 10 bytes of event name and data.
    for (let i = 0; i < 5; i++) appended.push((await store.append(s, "tick", JSON.stringify({ i: 1000 + i }))).id);
    const page = await store.readBefore(s, undefined, 10, 30);
    expect(ids(page.entries)).toEqual(appended.slice(3));
    expect(page.more).toBe(true);
    expect(ids((await store.readBefore(s, undefined, 10, 1)).entries)).toEqual(appended.slice(4));
    expect(await store.readBefore(stream(), undefined, 10)).toEqual({
      last: "0-0",
      epoch: "",
      more: false,
      entries: [],
    });
  });

  it("a read back sees only what the window and the length cap keep", async () => {
    const clock = steppedClock();
    const store = make(SHORT_WINDOW, clock);
    const s = stream();
    const { id: old } = await store.append(s, "tick", "{}");
    clock.advance(SHORT_WINDOW.windowMs / 2 + 1);
    const { id: fresh } = await store.append(s, "tick", "{}");
    clock.advance(SHORT_WINDOW.windowMs / 2 + 1);
    const page = await store.readBefore(s, undefined, 10);
    expect(ids(page.entries)).toEqual([fresh]);
    expect(page.more).toBe(false);
    expect(compareIds(fresh, old)).toBeGreaterThan(0);
    clock.advance(SHORT_WINDOW.windowMs + 1);
    expect(await store.readBefore(s, undefined, 10)).toMatchObject({ last: fresh, entries: [], more: false });
  });

  it("caps a stream's length and reports the newest deleted id", async () => {
    const store = make(LIMITS);
    const s = stream();
    const appended: string[] = [];
    for (let i = 0; i < 8; i++) appended.push((await store.append(s, "tick", "{}")).id);
    const read = await store.readAfter(s, "0-0", 100);
    expect(read.length).toBe(5);
    expect(ids(read.entries)).toEqual(appended.slice(3));
    expect(read.maxDeleted).toBe(appended[2]);
  });

  it("drops entries older than the window, and remembers the last id when the stream is gone", async () => {
    const clock = steppedClock();
    const store = make(SHORT_WINDOW, clock);
    const s = stream();
    const { id: last } = await store.append(s, "tick", "{}");
    clock.advance(SHORT_WINDOW.windowMs + 1);
    const read = await store.readAfter(s, "0-0", 10);
    expect(read.length).toBe(0);
    expect(read.last).toBe(last);
    expect(read.maxDeleted).toBe(last);
  });

  it("an event appended after the stream expired does not hide the ones lost with it (recovered:true while events were missing)", async () => {
    const clock = steppedClock();
    const store = make(SHORT_WINDOW, clock);
    const s = stream();
    const { id: seen } = await store.append(s, "e0", "{}");
    await store.append(s, "e1", "{}");
    const { id: lost } = await store.append(s, "e2", "{}");
    clock.advance(SHORT_WINDOW.windowMs + 1);
    await store.append(s, "e3", "{}");
    const read = await store.readAfter(s, seen, 10);
    expect(compareIds(read.maxDeleted, seen)).toBeGreaterThan(0);
    expect(compareIds(read.maxDeleted, lost)).toBeGreaterThanOrEqual(0);
  });

  it("ids stay after the stream's last id even when the clock goes back", async () => {
    const clock = steppedClock();
    const store = make(LIMITS, clock);
    const s = stream();
    const first = await store.append(s, "tick", "{}");
    clock.advance(-5_000);
    const second = await store.append(s, "tick", "{}");
    expect(compareIds(second.id, first.id)).toBeGreaterThan(0);
  });

  it("starts a new epoch when an instance delivered an id the stream no longer has", async () => {
    const store = make(LIMITS);
    const s = stream();
    const { id, epoch } = await store.append(s, "tick", "{}");
    expect(await store.newEpochIfBehind(s, epoch, id)).toEqual({ last: id, epoch });
    const ahead = `${Number(id.split("-")[0]) + 1}-0`;
    const after = await store.newEpochIfBehind(s, epoch, ahead);
    expect(after.last).toBe(id);
    expect(after.epoch).not.toBe(epoch);
    // Once: a second instance with the same evidence keeps the new epoch.
    expect(await store.newEpochIfBehind(s, epoch, ahead)).toEqual(after);
  });

  it("an empty, never-used stream reads as id 0-0 with no epoch", async () => {
    const store = make(LIMITS);
    expect(await store.readAfter(stream(), "0-0", 10)).toEqual({
      last: "0-0",
      epoch: "",
      maxDeleted: "0-0",
      length: 0,
      entries: [],
    });
  });
});

describe("HistoryStore on redis, data loss", () => {
  it("a stream whose data Redis lost comes back in a new epoch", async () => {
    const store = new RedisHistoryStore(redis.client(), redis.client(), LIMITS);
    const s = `user:lost-${Math.random().toString(36).slice(2)}`;
    const before = await store.append(s, "tick", "{}");
    const keys = await redis.client().keys(`tether:stream*{${s}}`);
    expect(keys).toHaveLength(2);
    await redis.client().del(...keys);
    const after = await store.append(s, "tick", "{}");
    expect(after.epoch).not.toBe(before.epoch);
  });
});
