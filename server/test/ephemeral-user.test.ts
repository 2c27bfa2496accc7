/**
 * Issue 22, ephemeral events to one user: `publish({ user }, …, { ephemeral: true })` (in
 * process, and `POST /api/publish` with `"ephemeral": true`) reaches every connected socket of
 * that user on every instance, with no offset and nothing stored; a bystander user on the same
 * instances hears nothing. Two host apps on one real redis-server, real socket.io clients.
 */
import { ErrorCode } from "@tether/shared";
import type { TestClient } from "@tether/testkit/client";
import { post } from "@tether/testkit/http";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PUBLISH_KEY, type RoomsHost, startRoomsHost, tab } from "./security/rooms-host.js";

let redis: TestRedis;
let a: RoomsHost;
let b: RoomsHost;
const opened: TestClient[] = [];
const auth = { authorization: `Bearer ${PUBLISH_KEY}` };

beforeAll(async () => {
  redis = await startRedis();
  const policy = { canJoin: {}, roomsOf: {} };
  a = await startRoomsHost({ REDIS_URL: redis.url }, policy);
  b = await startRoomsHost({ REDIS_URL: redis.url }, policy);
});
afterAll(async () => {
  for (const t of opened) t.client.close();
  await Promise.all([a?.close(), b?.close()]);
  await redis?.close();
});

type Tab = Awaited<ReturnType<typeof tab>>;

/**
 * Sends a marker to everyone from instance A, and waits until each tab has it: on the same
 * adapter channel after the event under test, so a tab that was sent that event has it by now.
 */
async function settle(tabs: Tab[], n: number): Promise<void> {
  await a.tether.publisher.publish({ everyone: true }, "test:marker", { n }, { ephemeral: true });
  for (const t of tabs) await waitFor("the marker", () => t.of("test:marker").some((p) => p.n === n));
}

describe("ephemeral events to a user", () => {
  it("reach every socket of the user on both instances (in process and over HTTP), never a bystander, never stored", async () => {
    const aliceA = await tab(a.url, "alice", opened);
    const aliceB = await tab(b.url, "alice", opened);
    const bobA = await tab(a.url, "bob", opened);
    const bobB = await tab(b.url, "bob", opened);
    const sent = await a.tether.publisher.publish(
      { user: "alice" },
      "inbox:typing",
      { from: "carol" },
      { ephemeral: true },
    );
    expect(sent).toBeUndefined();
    for (const t of [aliceA, aliceB]) await waitFor("alice's event", () => t.of("inbox:typing").length === 1);
    expect(aliceB.of("inbox:typing")[0]).toEqual({ from: "carol" }); // no offset, no room

    const res = await post(
      `${b.url}/api/publish`,
      { target: { user: "alice" }, event: "inbox:typing", data: { from: "dave" }, ephemeral: true },
      auth,
    );
    expect(res).toMatchObject({ status: 202, body: {} });
    for (const t of [aliceA, aliceB]) await waitFor("alice's HTTP event", () => t.of("inbox:typing").length === 2);
    expect(aliceA.of("inbox:typing")[1]).toEqual({ from: "dave" });

    await settle([aliceA, aliceB, bobA, bobB], 1);
    for (const t of [bobA, bobB]) expect(t.of("inbox:typing")).toEqual([]);
    for (const t of [aliceA, aliceB]) expect(t.of("inbox:typing")).toHaveLength(2);
    expect((await a.tether.history({ user: "alice" })).events).toEqual([]);
  });

  it("embedded (no Redis, one instance): the user's sockets get it, a bystander does not", async () => {
    const embedded = await startRoomsHost({}, { canJoin: {}, roomsOf: {} });
    try {
      const alice = await tab(embedded.url, "alice", opened);
      const bob = await tab(embedded.url, "bob", opened);
      await embedded.tether.publisher.publish({ user: "alice" }, "inbox:typing", { from: "x" }, { ephemeral: true });
      await embedded.tether.publisher.publish({ everyone: true }, "test:marker", { n: 0 }, { ephemeral: true });
      for (const t of [alice, bob]) await waitFor("the marker", () => t.of("test:marker").length === 1);
      expect(alice.of("inbox:typing")).toEqual([{ from: "x" }]);
      expect(bob.of("inbox:typing")).toEqual([]);
    } finally {
      await embedded.close();
    }
  });

  it("hostile: bad user targets refused INVALID_INPUT (in process and over HTTP); a burst to one user, the bystander keeps its socket", async () => {
    const bob = await tab(a.url, "bob", opened);
    const alice = await tab(b.url, "alice", opened);
    const { publisher } = a.tether;
    for (const target of [{ user: "" }, { user: 5 }, { user: "u".repeat(257) }, { user: "alice", except: "s" }]) {
      await expect(publisher.publish(target as never, "x:y", {}, { ephemeral: true })).rejects.toMatchObject({
        code: ErrorCode.InvalidInput,
      });
      const res = await post(`${a.url}/api/publish`, { target, event: "x:y", data: {}, ephemeral: true }, auth);
      expect({ target, status: res.status }).toEqual({ target, status: 400 });
    }
    // Data rules as for a stored event: too deep, too many values, a reserved field.
    let deep: object = {};
    for (let i = 0; i < 200; i++) deep = { d: deep };
    const huge = { values: Array.from({ length: 30_000 }, (_, i) => i) };
    for (const data of [deep, huge, { offset: "1" }])
      await expect(publisher.publish({ user: "alice" }, "x:y", data, { ephemeral: true })).rejects.toMatchObject({
        code: ErrorCode.InvalidInput,
      });
    // Repeated: a burst of 500 to alice arrives (best effort, here nothing is lost) and leaves bob connected and untouched.
    for (let i = 0; i < 500; i++) await publisher.publish({ user: "alice" }, "burst:n", { i }, { ephemeral: true });
    await waitFor("the burst", () => alice.of("burst:n").length === 500);
    await settle([alice, bob], 2);
    expect(bob.of("burst:n")).toEqual([]);
    expect(bob.client.socket.connected).toBe(true);
    expect(await bob.client.echo("still here")).toBe("still here");
  });
});
