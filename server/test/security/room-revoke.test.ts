/**
 * Issue 18, item 8: authorization that is current. A host call on instance A
 * (`removeFromRoom`, `recheckRooms`) takes a socket connected to instance B out
 * of a room within a second: `room:revoked`, no further room events, gone from
 * the members, its members request refused; a bystander keeps receiving. Two
 * host apps on one real redis-server, real socket.io clients.
 */
import { ErrorCode } from "@tether/shared";
import type { TestClient } from "@tether/testkit/client";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Policy, publish, type RoomsHost, startRoomsHost, tab, users } from "./rooms-host.js";

/** How soon a removal must reach the other instance. */
const WITHIN_MS = 1_000;

let redis: TestRedis;
let a: RoomsHost;
let b: RoomsHost;
const opened: TestClient[] = [];
const policy: Policy = {
  canJoin: { alice: ["*"], bob: ["*"], carol: ["*"], dave: ["*"], erin: ["*"] },
  roomsOf: { erin: ["team:granted"], carol: ["team:granted"] },
};

beforeAll(async () => {
  redis = await startRedis();
  const env = { REDIS_URL: redis.url, TETHER_SESSION_CHECK_INTERVAL: "1s" };
  a = await startRoomsHost(env, policy);
  b = await startRoomsHost(env, policy);
});
afterAll(async () => {
  for (const t of opened) t.client.close();
  await Promise.all([a?.close(), b?.close()]);
  await redis?.close();
});

type Tab = Awaited<ReturnType<typeof tab>>;

/** After a removal: `who` is out of `room` everywhere; `bystander` (on the same instance) still receives. */
async function expectRemoved(who: Tab, bystander: Tab, watcher: Tab, room: string, user: string) {
  expect(who.of("room:revoked")).toEqual([{ room }]);
  await waitFor(`${user} gone from members`, async () => !(user in users(await a.tether.members(room))), {
    timeoutMs: WITHIN_MS,
  });
  await waitFor(`presence:leave for ${user}`, () => watcher.of("presence:leave", room).some((p) => p.user === user), {
    timeoutMs: WITHIN_MS,
  });
  expect(await who.rawMembers(room)).toMatchObject({ ok: false, error: { code: ErrorCode.Forbidden } });
  const before = bystander.of("doc:edit", room).length;
  await publish(a.url, room, "doc:edit", { n: 99 });
  await waitFor("the bystander's event", () => bystander.of("doc:edit", room).length === before + 1);
  // Same instance as the bystander: the fan-out that reached it would have reached the removed socket first.
  await who.client.echo("sync");
  expect(who.of("doc:edit", room).filter((p) => p.n === 99)).toEqual([]);
}

describe("tether.removeFromRoom", () => {
  it("by user: on A, it removes the user's sockets on B within a second", async () => {
    const bob = await tab(b.url, "bob", opened);
    const carol = await tab(b.url, "carol", opened);
    const alice = await tab(a.url, "alice", opened);
    for (const t of [bob, carol, alice]) await t.client.join("doc:r");
    await publish(a.url, "doc:r", "doc:edit", { n: 1 });
    await waitFor("bob's first event", () => bob.of("doc:edit", "doc:r").length === 1);
    policy.canJoin.bob = [];
    const started = Date.now();
    await a.tether.removeFromRoom("doc:r", { userId: "bob" });
    await waitFor("room:revoked for bob", () => bob.of("room:revoked").length === 1, { timeoutMs: WITHIN_MS });
    expect(Date.now() - started).toBeLessThan(WITHIN_MS);
    await expectRemoved(bob, carol, alice, "doc:r", "bob");
    // Still connected, still in its other rooms; a new join is refused by canJoin.
    expect(bob.client.state).toBe("connected");
    await expect(bob.client.join("doc:r")).rejects.toMatchObject({ code: ErrorCode.Forbidden });
  });

  it("a roomsOf room too: the removed socket must ask canJoin to come back", async () => {
    const erin = await tab(b.url, "erin", opened);
    const carol = await tab(b.url, "carol", opened);
    const alice = await tab(a.url, "alice", opened);
    await alice.client.join("team:granted");
    await waitFor("erin present", async () => "erin" in users(await a.tether.members("team:granted")));
    policy.roomsOf.erin = [];
    policy.canJoin.erin = [];
    await a.tether.removeFromRoom("team:granted", { userId: "erin" });
    await waitFor("room:revoked for erin", () => erin.of("room:revoked").length === 1, { timeoutMs: WITHIN_MS });
    await expectRemoved(erin, carol, alice, "team:granted", "erin");
    await expect(erin.client.join("team:granted")).rejects.toMatchObject({ code: ErrorCode.Forbidden });
  });
});

describe("tether.removeFromRoom by host session", () => {
  it("removes that session's sockets on B, not the same user's other session", async () => {
    const work = await tab(b.url, "bob", opened, "bob-laptop-session");
    const phone = await tab(b.url, "bob", opened, "bob-phone-session");
    const carol = await tab(b.url, "carol", opened);
    const alice = await tab(a.url, "alice", opened);
    policy.canJoin.bob = ["*"];
    for (const t of [work, phone, carol, alice]) await t.client.join("doc:s");
    expect(users(await a.tether.members("doc:s")).bob).toBe(2);
    await a.tether.removeFromRoom("doc:s", { sessionKey: "bob-laptop-session" });
    await waitFor("room:revoked for the laptop", () => work.of("room:revoked").length === 1, { timeoutMs: WITHIN_MS });
    expect(work.of("room:revoked")).toEqual([{ room: "doc:s" }]);
    await waitFor("one of bob's connections left", async () => users(await a.tether.members("doc:s")).bob === 1, {
      timeoutMs: WITHIN_MS,
    });
    expect(await work.rawMembers("doc:s")).toMatchObject({ ok: false, error: { code: ErrorCode.Forbidden } });
    await publish(a.url, "doc:s", "doc:edit", { n: 7 });
    await waitFor("the phone's event", () => phone.of("doc:edit", "doc:s").length === 1);
    await waitFor("carol's event", () => carol.of("doc:edit", "doc:s").length === 1);
    await work.client.echo("sync");
    expect(work.of("doc:edit", "doc:s")).toEqual([]);
    expect(phone.of("room:revoked")).toEqual([]);
  });
});

describe("tether.recheckRooms", () => {
  it("re-runs canJoin for connected sockets: on A, it removes a socket on B no longer allowed within a second", async () => {
    const dave = await tab(b.url, "dave", opened);
    const carol = await tab(b.url, "carol", opened);
    const alice = await tab(a.url, "alice", opened);
    for (const t of [dave, carol, alice]) await t.client.join("doc:q");
    await dave.client.join("doc:other");
    policy.canJoin.dave = ["doc:other"];
    await a.tether.recheckRooms("doc:q");
    await waitFor("room:revoked for dave", () => dave.of("room:revoked").length === 1, { timeoutMs: WITHIN_MS });
    await expectRemoved(dave, carol, alice, "doc:q", "dave");
    // The room still allowed is kept.
    expect((await dave.rawMembers("doc:other")).ok).toBe(true);
    // Every room: nothing else changes for those still allowed.
    await a.tether.recheckRooms();
    await alice.client.echo("sync");
    expect((await carol.rawMembers("doc:q")).ok).toBe(true);
    expect(dave.of("room:revoked")).toEqual([{ room: "doc:q" }]);
  });
});
