import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { startRedisCluster, type TestRedisCluster } from "@tether/testkit/redis-cluster";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  MemoryPresenceStore,
  PRESENCE_CHUNK,
  type PresenceStore,
  type PresenceUpdate,
  RedisPresenceStore,
} from "../src/store/presence.js";

/** One suite over both presence stores: Redis (its Lua script) and the in-process twin. */
let redis: TestRedis | undefined;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => redis?.close());

const stores: [string, () => PresenceStore][] = [
  ["redis", () => new RedisPresenceStore((redis as TestRedis).client())],
  ["memory", () => new MemoryPresenceStore()],
];

describe.each(stores)("presence store (%s)", (_, make) => {
  const TTL = 400;
  const add = (room: string, instanceId: string, entries: [string, number][]): PresenceUpdate => ({
    room,
    instanceId,
    mode: "add",
    entries,
    ttlMs: TTL,
    withMembers: true,
  });

  it("counts connections per user across instances; first and last connection are the changes", async () => {
    const store = make();
    const r1 = await store.update(add("r", "A", [["alice", 1]]));
    expect(r1.changes).toEqual([{ userId: "alice", before: 0, after: 1 }]);
    const r2 = await store.update(add("r", "B", [["alice", 1]]));
    expect(r2.changes).toEqual([{ userId: "alice", before: 1, after: 2 }]);
    expect(r2.members).toEqual([{ userId: "alice", connections: 2 }]);
    await store.update(add("r", "A", [["alice", -1]]));
    const r3 = await store.update(add("r", "B", [["alice", -1]]));
    expect(r3.changes).toEqual([{ userId: "alice", before: 1, after: 0 }]);
    expect(r3.members).toEqual([]);
    // Never below zero (a leave without its join).
    expect((await store.update(add("r", "A", [["bob", -1]]))).changes).toEqual([]);
  });

  it("presence data: joined with, replaced for a present user (an update), listed with members, left with, then gone", async () => {
    const store = make();
    const joined = await store.update({ ...add("pd", "A", [["alice", 1]]), data: [["alice", '{"cursor":1}']] });
    expect(joined.changes).toEqual([{ userId: "alice", before: 0, after: 1, data: { cursor: 1 } }]);
    expect(joined.updates).toBeUndefined();
    expect(joined.members).toEqual([{ userId: "alice", connections: 1, data: { cursor: 1 } }]);
    // A second connection elsewhere with other data: no join, an update.
    const second = await store.update({ ...add("pd", "B", [["alice", 1]]), data: [["alice", '{"cursor":2}']] });
    expect(second.changes).toEqual([{ userId: "alice", before: 1, after: 2 }]);
    expect(second.updates).toEqual([{ userId: "alice", data: { cursor: 2 } }]);
    // Data alone (presence:set), and data for a user who is not present (ignored).
    const set = await store.update({
      ...add("pd", "A", []),
      data: [
        ["alice", '{"cursor":3}'],
        ["bob", '{"x":1}'],
      ],
    });
    expect(set.changes).toEqual([]);
    expect(set.updates).toEqual([{ userId: "alice", data: { cursor: 3 } }]);
    expect(await store.members("pd")).toEqual({
      members: [{ userId: "alice", connections: 2, data: { cursor: 3 } }],
      total: 1,
    });
    await store.update(add("pd", "A", [["bob", 1]]));
    expect((await store.members("pd")).members).toContainEqual({ userId: "bob", connections: 1 });
    await store.update(add("pd", "A", [["alice", -1]]));
    const left = await store.update(add("pd", "B", [["alice", -1]]));
    expect(left.changes).toEqual([{ userId: "alice", before: 1, after: 0, data: { cursor: 3 } }]);
    // Gone with the user: back without data, it has none.
    const back = await store.update(add("pd", "A", [["alice", 1]]));
    expect(back.changes).toEqual([{ userId: "alice", before: 0, after: 1 }]);
  });

  it("a dead instance's entries expire: the next update reports its users gone", async () => {
    const store = make();
    await store.update(add("k", "dead", [["grace", 1]]));
    await store.update(add("k", "alive", [["heidi", 1]]));
    // Only the live instance renews (the heartbeat: absolute counts).
    const renew = () =>
      store.update({ room: "k", instanceId: "alive", mode: "set", entries: [["heidi", 1]], ttlMs: TTL });
    const gone = await waitFor(
      "grace's entry to expire",
      async () => (await renew()).changes.find((c) => c.userId === "grace" && c.after === 0),
      { timeoutMs: TTL * 3, intervalMs: TTL / 4 },
    );
    expect(gone).toEqual({ userId: "grace", before: 1, after: 0 });
    expect((await store.update(add("k", "alive", []))).members).toEqual([{ userId: "heidi", connections: 1 }]);
  });

  it("the heartbeat puts back counts the store lost", async () => {
    const store = make();
    const set = await store.update({ room: "s", instanceId: "A", mode: "set", entries: [["ivan", 2]], ttlMs: TTL });
    expect(set.changes).toEqual([{ userId: "ivan", before: 0, after: 2 }]);
    const again = await store.update({ room: "s", instanceId: "A", mode: "set", entries: [["ivan", 2]], ttlMs: TTL });
    expect(again.changes).toEqual([]);
  });

  it("restore: sets data only for a present user with none (never over data set since, never for one absent)", async () => {
    const store = make();
    const room = `restore-${Math.random()}`;
    await store.update(
      add(room, "A", [
        ["alice", 1],
        ["bob", 1],
      ]),
    );
    await store.update({ ...add(room, "A", []), data: [["bob", '{"s":"new"}']] });
    const restore = (data: [string, string][]): PresenceUpdate => ({ ...add(room, "B", []), mode: "restore", data });
    const restored = await store.update(
      restore([
        ["alice", '{"s":"old"}'],
        ["bob", '{"s":"old"}'],
        ["carol", "{}"],
      ]),
    );
    expect(restored.updates).toEqual([{ userId: "alice", data: { s: "old" } }]);
    expect(restored.changes).toEqual([]);
    const members = (await store.members(room)).members;
    expect(members).toEqual(
      expect.arrayContaining([
        { userId: "alice", connections: 1, data: { s: "old" } },
        { userId: "bob", connections: 1, data: { s: "new" } },
      ]),
    );
    expect(members).toHaveLength(2);
  });

  it("updateMany: several rooms in one call, each with the same rules as update (the heartbeat)", async () => {
    const store = make();
    await store.update(add("m1", "dead", [["olga", 1]]));
    await store.update(add("m2", "A", [["pat", 1]]));
    const set = (room: string, entries: [string, number][]): PresenceUpdate => ({
      room,
      instanceId: "A",
      mode: "set",
      entries,
      ttlMs: TTL,
    });
    const first = await store.updateMany([set("m1", [["pat", 2]]), set("m2", [["pat", 1]]), set("m3", [])]);
    expect(first.map((r) => r.changes)).toEqual([[{ userId: "pat", before: 0, after: 2 }], [], []]);
    // olga's instance never renews: a later batch reports her gone, in her room only.
    const gone = await waitFor(
      "olga's entry to expire",
      async () => {
        const results = await store.updateMany([set("m1", [["pat", 2]]), set("m2", [["pat", 1]])]);
        return results[0]?.changes.some((c) => c.userId === "olga") ? results : undefined;
      },
      { timeoutMs: TTL * 3, intervalMs: TTL / 4 },
    );
    expect(gone.map((r) => r.changes)).toEqual([[{ userId: "olga", before: 1, after: 0 }], []]);
    expect(await store.updateMany([])).toEqual([]);
  });

  it("updateMany: more rooms than one chunk holds are all written, results in order", async () => {
    const store = make();
    const n = PRESENCE_CHUNK.rooms + 10;
    const rooms = Array.from({ length: n }, (_, i) => `chunk-${i}`);
    const results = await store.updateMany(
      rooms.map((room, i) => ({ room, instanceId: "A", mode: "set", entries: [[`u${i}`, 1]], ttlMs: 5_000 })),
    );
    expect(results).toHaveLength(n);
    expect(results.every((r, i) => r.changes[0]?.userId === `u${i}`)).toBe(true);
    expect((await store.members(rooms[n - 1] as string)).members).toEqual([{ userId: `u${n - 1}`, connections: 1 }]);
  });

  it("members: a read that writes nothing (an expired entry is left out, and its change is still reported later)", async () => {
    const store = make();
    await store.update(add("ro", "dead", [["quinn", 1]]));
    await store.update({ ...add("ro", "alive", [["rita", 1]]), ttlMs: 60_000 });
    expect(await store.members("ro")).toEqual({
      members: expect.arrayContaining([
        { userId: "quinn", connections: 1 },
        { userId: "rita", connections: 1 },
      ]),
      total: 2,
    });
    await waitFor("quinn left out of members", async () => (await store.members("ro")).total === 1, {
      timeoutMs: TTL * 3,
      intervalMs: TTL / 4,
    });
    expect(await store.members("ro")).toEqual({ members: [{ userId: "rita", connections: 1 }], total: 1 });
    // The read removed nothing: the next update is the one that finds quinn gone.
    const next = await store.update({ ...add("ro", "alive", []), withMembers: false });
    expect(next.changes).toEqual([{ userId: "quinn", before: 1, after: 0 }]);
  });

  it("members and updates list at most the limit asked for, with the total", async () => {
    const store = make();
    const entries = Array.from({ length: 150 }, (_, i): [string, number] => [`m${i}`, 1]);
    const written = await store.update({ ...add("big", "A", entries), ttlMs: 60_000, membersLimit: 100 });
    expect(written.members).toHaveLength(100);
    expect(written.membersTotal).toBe(150);
    const read = await store.members("big", 100);
    expect(read.members).toHaveLength(100);
    expect(new Set(read.members.map((m) => m.userId)).size).toBe(100);
    expect(read.total).toBe(150);
    expect((await store.members("big")).members).toHaveLength(150);
    expect((await store.members("nobody", 10)).members).toEqual([]);
  });
});

describe("presence store on a Redis Cluster", () => {
  let cluster: TestRedisCluster | undefined;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 90_000);
  afterAll(async () => cluster?.close());

  it("updateMany spreads rooms over slots (one script per room), and members reads each room's slot", async () => {
    const store = new RedisPresenceStore((cluster as TestRedisCluster).client());
    const rooms = Array.from({ length: 12 }, (_, i) => `spread-${i}`);
    const results = await store.updateMany(
      rooms.map((room) => ({ room, instanceId: "A", mode: "add", entries: [["sam", 1]], ttlMs: 5_000 })),
    );
    expect(results.map((r) => r.changes)).toEqual(rooms.map(() => [{ userId: "sam", before: 0, after: 1 }]));
    for (const room of rooms)
      expect(await store.members(room)).toEqual({ members: [{ userId: "sam", connections: 1 }], total: 1 });
  });
});
