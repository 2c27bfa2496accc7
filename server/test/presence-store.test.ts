import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  MemoryPresenceStore,
  type PresenceStore,
  type PresenceUpdate,
  RedisPresenceStore,
} from "../src/store/presence.js";
import { startRedis, type TestRedis } from "./helpers/redis.js";
import { waitFor } from "./helpers/wait.js";

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
});
