/**
 * Issue 18, item 6 and the join ack: rooms are bounded per user and per
 * instance (a refusal is typed, a reconnect asking for more is told
 * `room:revoked`), presence heartbeats are one store call per tick for all of
 * an instance's rooms, and member lists are bounded. Real redis-server, a host
 * app on a real HTTP server, real socket.io clients.
 */
import { ErrorCode } from "@tether/shared";
import type { TestClient } from "@tether/testkit/client";
import { connectRaw } from "@tether/testkit/http";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisPresenceStore } from "../../src/store/presence.js";
import { type Policy, type RoomsHost, startRoomsHost, tab, users } from "./rooms-host.js";

let redis: TestRedis;
let inspect: Redis;
const opened: TestClient[] = [];
beforeAll(async () => {
  redis = await startRedis();
  inspect = redis.client();
});
afterAll(async () => {
  for (const t of opened) t.client.close();
  await redis?.close();
});

/** Presence keys of rooms whose name starts with `prefix` (three per room). */
const presenceKeys = async (prefix: string) => (await inspect.keys(`tether:presence:{room:${prefix}*`)).length;
/** Sharded channels (room streams and adapter rooms) naming rooms that start with `prefix`. */
const channels = async (prefix: string) =>
  ((await inspect.call("PUBSUB", "SHARDCHANNELS")) as string[]).filter((c) => c.includes(prefix)).sort();

describe("rooms per user on an instance (TETHER_MAX_ROOMS_PER_USER=5)", () => {
  let host: RoomsHost;
  const policy: Policy = { canJoin: { mallory: ["*"], bob: ["*"] }, roomsOf: {} };
  beforeAll(async () => {
    host = await startRoomsHost({ REDIS_URL: redis.url, TETHER_MAX_ROOMS_PER_USER: "5" }, policy);
  });
  afterAll(async () => host?.close());

  it("a user at the bound across two sessions gets a typed refusal; a room is counted once; nothing grows past it", async () => {
    const one = await tab(host.url, "mallory", opened);
    const two = await tab(host.url, "mallory", opened);
    for (const room of ["ub-1", "ub-2", "ub-3"]) expect((await one.rawJoin(room)).ok).toBe(true);
    // The same room from a second socket is not a second room.
    for (const room of ["ub-3", "ub-4", "ub-5", "ub-1"]) expect((await two.rawJoin(room)).ok).toBe(true);
    const keysAtBound = await presenceKeys("ub-");
    const channelsAtBound = await channels("ub-");
    expect(keysAtBound).toBe(5 * 3);

    const refused = await two.rawJoin("ub-6");
    expect(refused).toMatchObject({ ok: false, error: { code: ErrorCode.InvalidInput } });
    expect((await one.rawJoin("ub-7")).ok).toBe(false);
    // Already the user's: still allowed.
    expect((await one.rawJoin("ub-5")).ok).toBe(true);
    expect(await presenceKeys("ub-")).toBe(keysAtBound);
    expect(await channels("ub-")).toEqual(channelsAtBound);
    expect(channelsAtBound.some((c) => c.includes("ub-6") || c.includes("ub-7"))).toBe(false);
    // Per user: another user is not affected.
    const bob = await tab(host.url, "bob", opened);
    expect((await bob.rawJoin("ub-6")).ok).toBe(true);

    // Leaving frees a place: the room is the user's until its last socket here leaves it.
    await one.client.leave("ub-2");
    expect((await two.rawJoin("ub-8")).ok).toBe(true);
  });

  it("a reconnect asking for rooms past the bound keeps those within it; the others are told room:revoked", async () => {
    const one = await tab(host.url, "mallory", opened);
    // The user holds ub-1, ub-3, ub-4, ub-5, ub-8 from the test above (5 rooms).
    const res = await one.post("/api/auth/ws-token");
    const { token } = (await res.json()) as { token: string };
    const socket = await connectRaw(host.url, { token, rooms: { "ub-1": null, "ub-9": null, "ub-10": null } });
    try {
      expect(Object.keys(socket.welcome.rooms ?? {})).toEqual(["ub-1"]);
      await waitFor("two room:revoked", () => socket.received.filter(([e]) => e === "room:revoked").length === 2);
      expect(socket.received.filter(([e]) => e === "room:revoked").map(([, p]) => p)).toEqual([
        { room: "ub-9" },
        { room: "ub-10" },
      ]);
      expect(await presenceKeys("ub-9")).toBe(0);
    } finally {
      socket.close();
    }
  });
});

describe("rooms per instance (TETHER_MAX_ROOMS_PER_INSTANCE=4)", () => {
  let host: RoomsHost;
  const policy: Policy = { canJoin: { u1: ["*"], u2: ["*"], u3: ["*"] }, roomsOf: {} };
  beforeAll(async () => {
    host = await startRoomsHost({ REDIS_URL: redis.url, TETHER_MAX_ROOMS_PER_INSTANCE: "4" }, policy);
  });
  afterAll(async () => host?.close());

  it("past the bound a new room is refused (UNAVAILABLE: another instance may take it); rooms already here are not", async () => {
    const u1 = await tab(host.url, "u1", opened);
    const u2 = await tab(host.url, "u2", opened);
    const u3 = await tab(host.url, "u3", opened);
    expect((await u1.rawJoin("ib-1")).ok).toBe(true);
    expect((await u1.rawJoin("ib-2")).ok).toBe(true);
    expect((await u2.rawJoin("ib-3")).ok).toBe(true);
    expect((await u2.rawJoin("ib-4")).ok).toBe(true);
    expect(await u3.rawJoin("ib-5")).toMatchObject({ ok: false, error: { code: ErrorCode.Unavailable } });
    expect((await u3.rawJoin("ib-1")).ok).toBe(true);
    expect(await presenceKeys("ib-")).toBe(4 * 3);
    expect((await channels("ib-5")).length).toBe(0);
  });
});

describe("the presence heartbeat", () => {
  let host: RoomsHost;
  const policy: Policy = { canJoin: { hb: ["*"] }, roomsOf: {} };
  beforeAll(async () => {
    // Renewals every 100 ms.
    host = await startRoomsHost({ REDIS_URL: redis.url, TETHER_SESSION_CHECK_INTERVAL: "300ms" }, policy);
  });
  afterAll(async () => host?.close());

  it("renews all of an instance's rooms in one store call per tick (counted with MONITOR)", async () => {
    const ROOMS = 20;
    const hb = await tab(host.url, "hb", opened);
    const rooms = Array.from({ length: ROOMS }, (_, i) => `hb-${i}`);
    for (const room of rooms) expect((await hb.rawJoin(room)).ok).toBe(true);
    // From here on nothing joins or leaves: every presence script call is a heartbeat.
    // ioredis sets a monitor's status only after MONITOR's OK resolves: a busy Redis's first lines in
    // the same read are taken for replies ("Command queue state error"), and the connection is made
    // again (MONITOR re-sent; the testkit's monitor never leaves that error unhandled). A few lines
    // are lost; the counts below only need some.
    const monitor = await redis.monitor();
    const calls: string[][] = [];
    monitor.on("monitor", (_time: string, args: string[]) => {
      const name = String(args[0]).toLowerCase();
      if ((name === "evalsha" || name === "eval") && args.some((a) => String(a).includes("{room:hb-")))
        calls.push(args.map(String));
    });
    try {
      const renewed = (room: string) => calls.filter((c) => c.includes(`tether:presence:{room:${room}}:counts`)).length;
      await waitFor("five renewals of every room", () => rooms.every((room) => renewed(room) >= 5), {
        timeoutMs: 5_000,
      });
      const snapshot = [...calls];
      // One call per tick, each carrying every room (not one call per room per tick).
      for (const call of snapshot)
        for (const room of rooms) expect(call).toContain(`tether:presence:{room:${room}}:counts`);
      expect(snapshot.length).toBeLessThanOrEqual(renewed("hb-0"));
    } finally {
      monitor.disconnect();
    }
  });
});

describe("member lists are bounded", () => {
  let host: RoomsHost;
  const policy: Policy = { canJoin: { amy: ["*"] }, roomsOf: {} };
  beforeAll(async () => {
    host = await startRoomsHost({ REDIS_URL: redis.url }, policy);
    // 150 users present through another instance (its entries live a minute), written by the store itself.
    const other = new RedisPresenceStore(redis.client());
    await other.update({
      room: "crowd",
      instanceId: "other-instance",
      mode: "add",
      entries: Array.from({ length: 150 }, (_, i): [string, number] => [`user-${i}`, 1]),
      ttlMs: 60_000,
    });
  });
  afterAll(async () => host?.close());

  it("a join ack and room:members carry the first 100 members and the total; tether.members takes a limit", async () => {
    const amy = await tab(host.url, "amy", opened);
    const ack = (await amy.rawJoin("crowd")) as { ok: boolean; members: unknown[]; membersTotal: number };
    expect(ack.ok).toBe(true);
    expect(ack.members).toHaveLength(100);
    expect(ack.membersTotal).toBe(151);
    const listed = (await amy.rawMembers("crowd")) as { ok: boolean; members: unknown[]; membersTotal: number };
    expect(listed.members).toHaveLength(100);
    expect(listed.membersTotal).toBe(151);
    expect(await host.tether.members("crowd", { limit: 10 })).toHaveLength(10);
    const all = await host.tether.members("crowd");
    expect(all).toHaveLength(151);
    expect(users(all).amy).toBe(1);
  });
});
