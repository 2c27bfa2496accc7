/**
 * Issue 22, presence data: a member carries a small bounded JSON object, set at `room:join`
 * and replaced by `presence:set`; `presence:join`, `presence:update` and `presence:leave`
 * carry it with `userId`; `room:members` and the host's `members()` list it. Real
 * redis-server, a host app on a real HTTP server, real socket.io clients.
 */
import { ErrorCode, type PresenceData } from "@tether/shared";
import type { TestClient } from "@tether/testkit/client";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RoomsHost, startRoomsHost, tab } from "./security/rooms-host.js";

let redis: TestRedis;
let host: RoomsHost;
const opened: TestClient[] = [];
const MAX_BYTES = 256;
beforeAll(async () => {
  redis = await startRedis();
  host = await startRoomsHost(
    {
      REDIS_URL: redis.url,
      TETHER_MAX_PRESENCE_BYTES: String(MAX_BYTES),
      TETHER_RATE_LIMIT_REFUSED_EVENTS: "100/1m",
    },
    { canJoin: { alice: ["*"], bob: ["*"], mallory: ["*"] }, roomsOf: {} },
  );
});
afterAll(async () => {
  for (const t of opened) t.client.close();
  await host?.close();
  await redis?.close();
});

type Tab = Awaited<ReturnType<typeof tab>>;
const join = (t: Tab, request: { room: string; presence?: unknown }) =>
  t.client.socket.timeout(5_000).emitWithAck("room:join", request as { room: string; presence?: PresenceData });
const set = (t: Tab, request: unknown) =>
  t.client.socket.timeout(5_000).emitWithAck("presence:set", request as { room: string; data: PresenceData });

describe("presence data", () => {
  it("set at join, replaced by presence:set, carried by join, update and leave with userId, listed by members", async () => {
    const bob = await tab(host.url, "bob", opened);
    expect(await join(bob, { room: "pd-1" })).toMatchObject({ ok: true });
    const alice = await tab(host.url, "alice", opened);
    const joined = await join(alice, { room: "pd-1", presence: { status: "typing", cursor: { line: 3 } } });
    expect(joined).toMatchObject({ ok: true });
    expect((joined as { members: unknown[] }).members).toContainEqual({
      userId: "alice",
      connections: 1,
      data: { status: "typing", cursor: { line: 3 } },
    });
    await waitFor("bob hears alice join", () => bob.of("presence:join", "pd-1").some((p) => p.userId === "alice"));
    expect(bob.of("presence:join", "pd-1").find((p) => p.userId === "alice")).toEqual({
      room: "pd-1",
      userId: "alice",
      user: "alice",
      data: { status: "typing", cursor: { line: 3 } },
    });

    expect(await set(alice, { room: "pd-1", data: { status: "idle" } })).toEqual({ ok: true });
    await waitFor("bob hears the update", () => bob.of("presence:update", "pd-1").length === 1);
    expect(bob.of("presence:update", "pd-1")[0]).toEqual({
      room: "pd-1",
      userId: "alice",
      user: "alice",
      data: { status: "idle" },
    });
    const members = await bob.rawMembers("pd-1");
    expect(members).toMatchObject({ ok: true });
    expect((members as { members: unknown[] }).members).toContainEqual({
      userId: "alice",
      connections: 1,
      data: { status: "idle" },
    });
    // Bob set none: listed without data.
    expect((members as { members: unknown[] }).members).toContainEqual({ userId: "bob", connections: 1 });
    expect(await host.tether.members("pd-1")).toContainEqual({
      userId: "alice",
      connections: 1,
      data: { status: "idle" },
    });

    await alice.client.leave("pd-1");
    await waitFor("bob hears alice leave", () => bob.of("presence:leave", "pd-1").length === 1);
    expect(bob.of("presence:leave", "pd-1")[0]).toEqual({
      room: "pd-1",
      userId: "alice",
      user: "alice",
      data: { status: "idle" },
    });
  });

  it("a second connection of a present user joining with data is an update, not a join", async () => {
    const bob = await tab(host.url, "bob", opened);
    expect(await join(bob, { room: "pd-2" })).toMatchObject({ ok: true });
    const one = await tab(host.url, "alice", opened);
    expect(await join(one, { room: "pd-2", presence: { tab: 1 } })).toMatchObject({ ok: true });
    const two = await tab(host.url, "alice", opened);
    expect(await join(two, { room: "pd-2", presence: { tab: 2 } })).toMatchObject({ ok: true });
    await waitFor("the update from the second tab", () => bob.of("presence:update", "pd-2").length === 1);
    expect(bob.of("presence:join", "pd-2").filter((p) => p.userId === "alice")).toHaveLength(1);
    expect(bob.of("presence:update", "pd-2")[0]).toMatchObject({ userId: "alice", data: { tab: 2 } });
  });

  it("hostile presence data gets INVALID_INPUT; presence:set outside the room FORBIDDEN; the socket and a bystander keep going", async () => {
    const mallory = await tab(host.url, "mallory", opened);
    const bystander = await tab(host.url, "bob", opened);
    expect(await join(bystander, { room: "pd-3" })).toMatchObject({ ok: true });
    expect(await set(mallory, { room: "pd-3", data: { a: 1 } })).toMatchObject({
      ok: false,
      error: { code: ErrorCode.Forbidden },
    });
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 12; i++) deep = { deep };
    const hostile: unknown[] = [
      { big: "x".repeat(MAX_BYTES) },
      deep,
      [1, 2, 3],
      "status",
      42,
      null,
      { ["k".repeat(300)]: 1 },
    ];
    for (const presence of hostile) {
      const ack = await join(mallory, { room: "pd-3", presence });
      expect({ presence: JSON.stringify(presence).slice(0, 40), ack }).toMatchObject({
        ack: { ok: false, error: { code: ErrorCode.InvalidInput } },
      });
    }
    // Nothing of a refused join happened: mallory is not in the room.
    expect(await set(mallory, { room: "pd-3", data: { a: 1 } })).toMatchObject({
      error: { code: ErrorCode.Forbidden },
    });
    // At the bound: allowed (JSON of exactly MAX_BYTES bytes).
    const atBound = { s: "y".repeat(MAX_BYTES - '{"s":""}'.length) };
    expect(JSON.stringify(atBound).length).toBe(MAX_BYTES);
    expect(await join(mallory, { room: "pd-3", presence: atBound })).toMatchObject({ ok: true });
    for (const data of hostile) {
      const ack = await set(mallory, { room: "pd-3", data });
      expect(ack).toMatchObject({ ok: false, error: { code: ErrorCode.InvalidInput } });
    }
    expect(await set(mallory, { room: "pd-3", data: { s: "z".repeat(MAX_BYTES - 8) } })).toEqual({ ok: true });
    // Repeated sets replace, never accumulate: one member, the last data.
    for (let i = 0; i < 5; i++) expect(await set(mallory, { room: "pd-3", data: { i } })).toEqual({ ok: true });
    const listed = (await host.tether.members("pd-3")).filter((m) => m.userId === "mallory");
    expect(listed).toEqual([{ userId: "mallory", connections: 1, data: { i: 4 } }]);
    expect(mallory.client.socket.connected).toBe(true);
    expect(bystander.client.socket.connected).toBe(true);
    expect(await bystander.rawMembers("pd-3")).toMatchObject({ ok: true });
  });
});

describe("presence data after Redis lost presence", () => {
  let fast: RoomsHost;
  beforeAll(async () => {
    // The presence heartbeat runs every third of the session check interval: short, so the re-assertion comes soon.
    fast = await startRoomsHost(
      { REDIS_URL: redis.url, TETHER_SESSION_CHECK_INTERVAL: "900ms" },
      { canJoin: { alice: ["*"], bob: ["*"] }, roomsOf: {} },
    );
  });
  afterAll(async () => {
    await fast?.close();
  });

  it("the members the instance re-asserts come back with their data (set at join and by presence:set), and the room hears it", async () => {
    const room = "pd-lost";
    const alice = await tab(fast.url, "alice", opened);
    const bob = await tab(fast.url, "bob", opened);
    expect(await join(alice, { room, presence: { status: "typing" } })).toMatchObject({ ok: true });
    expect(await join(bob, { room })).toMatchObject({ ok: true });
    expect(await set(bob, { room, data: { status: "away" } })).toMatchObject({ ok: true });
    const before = await fast.tether.members(room);
    expect(before).toEqual(
      expect.arrayContaining([
        { userId: "alice", connections: 1, data: { status: "typing" } },
        { userId: "bob", connections: 1, data: { status: "away" } },
      ]),
    );
    // What a FLUSHALL or a restart without persistence does to presence (the sessions kept: not the subject here).
    const base = `tether:presence:{room:${room}}`;
    const removed = await redis.client().del(`${base}:counts`, `${base}:expiries`, `${base}:users`, `${base}:data`);
    expect(removed).toBe(4);
    await waitFor("both members back with their data", async () => {
      const members = await fast.tether.members(room);
      return members.length === 2 && members.every((m) => m.data !== undefined);
    });
    expect(await fast.tether.members(room)).toEqual(expect.arrayContaining(before));
    await waitFor("bob hears alice's data again", () =>
      bob
        .of("presence:update", room)
        .some((p) => p.userId === "alice" && (p.data as PresenceData)?.status === "typing"),
    );
  });
});
