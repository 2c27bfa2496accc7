import { waitFor } from "@tether/testkit/wait";
import { describe, expect, it } from "vitest";
import type { PresencePayload, TetherClient, TetherClientError } from "../src/index.js";
import { liveRooms } from "./live-rooms.js";

type Events = { server: { "doc:edit": { n: number }; "inbox:new": { n: number } } };

/**
 * History on demand and presence data through the client, against a real instance and
 * Redis: a subscription's and the user's history paged back, presence data at join, on
 * update and after a reconnect, and hostile requests refused with a code while a
 * bystander keeps its socket.
 */
describe("history and presence data against a real server", () => {
  const rooms = liveRooms({ alice: ["*"], bob: ["*"] });
  /** Straight to the instance, unless through the proxy (`rooms.proxy.url`): a cut reaches only those. */
  const user = (name: string, url = rooms.instance.url): Promise<TetherClient<Events>> => rooms.user<Events>(name, url);
  const publish = (target: { user: string } | { room: string }, event: string, n: number) =>
    rooms.publish(target, event, { n });

  it("a subscription's history pages back from the newest, and the user's own stream has one too", async () => {
    const client = await user("alice");
    const doc = client.subscribe("doc:h");
    client.connect();
    await waitFor("subscribed", () => doc.state === "subscribed");
    for (let n = 1; n <= 5; n++) await publish({ room: "doc:h" }, "doc:edit", n);
    for (let n = 1; n <= 2; n++) await publish({ user: "alice" }, "inbox:new", n);

    const page = await doc.history({ limit: 3 });
    expect(page.events.map((e) => (e.data as { n: number }).n)).toEqual([3, 4, 5]);
    expect(page.events.every((e) => e.event === "doc:edit")).toBe(true);
    expect(page.more).toBe(true);
    const first = page.events[0];
    if (!first) throw new Error("no events");
    const older = await doc.history({ limit: 3, before: first.offset });
    expect(older.events.map((e) => (e.data as { n: number }).n)).toEqual([1, 2]);
    expect(older.more).toBe(false);
    await waitFor("the live edits", () => doc.offset === page.offset);

    const inbox = await client.history({ limit: 10 });
    expect(inbox.events.map((e) => [e.event, (e.data as { n: number }).n])).toEqual([
      ["inbox:new", 1],
      ["inbox:new", 2],
    ]);
  });

  it("presence data: at join, on update, listed by presence(), and set again after a reconnect", async () => {
    const alice = await user("alice");
    const seen = alice.subscribe("doc:p");
    const updates: PresencePayload[] = [];
    seen.on("presence:join", (p) => updates.push(p));
    seen.on("presence:update", (p) => updates.push(p));
    alice.connect();
    await waitFor("alice subscribed", () => seen.state === "subscribed");

    const bob = await user("bob", rooms.proxy.url);
    const doc = bob.subscribe("doc:p", { presence: { cursor: 1 } });
    bob.connect();
    await waitFor("bob's join with his data", () =>
      updates.some((p) => p.userId === "bob" && (p.data as { cursor?: number } | undefined)?.cursor === 1),
    );
    await doc.setPresence({ cursor: 2 });
    await waitFor("bob's update", () =>
      updates.some((p) => p.userId === "bob" && (p.data as { cursor?: number } | undefined)?.cursor === 2),
    );
    const members = await seen.presence();
    expect(members.find((m) => m.userId === "bob")?.data).toEqual({ cursor: 2 });

    // Refused by the server (past TETHER_MAX_PRESENCE_BYTES, 1 KB): not kept for the next join.
    const errors: string[] = [];
    doc.on("error", (error) => errors.push(error.code));
    const refused = await doc.setPresence({ big: "x".repeat(2_000) }).then(
      () => "accepted",
      (error: TetherClientError) => error.code,
    );
    expect(refused).toBe("INVALID_INPUT");

    rooms.proxy.cut();
    await waitFor("bob back", () => doc.state === "subscribed" && bob.state === "connected");
    await waitFor("bob's data after the reconnect", async () => {
      const now = await seen.presence();
      return (now.find((m) => m.userId === "bob")?.data as { cursor?: number } | undefined)?.cursor === 2;
    });
    await bob.echo("after the presence sent again"); // acknowledged after it
    expect(errors).toEqual([]);
  });

  it("hostile history and presence requests are refused with a code; the client and a bystander keep their sockets", async () => {
    const bystander = await user("alice");
    const kept = bystander.subscribe("doc:x");
    bystander.connect();
    await waitFor("bystander subscribed", () => kept.state === "subscribed");

    const client = await user("bob");
    const doc = client.subscribe("doc:x");
    client.connect();
    await waitFor("subscribed", () => doc.state === "subscribed");
    // Why the socket closed, if it did: it must not (a server-side close for an oversized message
    // shows as "transport close", and the client coming back would hide it).
    const drops: string[] = [];
    client.socket.on("disconnect", (reason) => drops.push(reason));
    const codeOf = (promise: Promise<unknown>) =>
      promise.then(
        () => "accepted",
        (error: TetherClientError) => error.code,
      );
    for (const options of [{ limit: -1 }, { limit: 1e9 }, { limit: 1.5 }, { before: "not-an-offset" }]) {
      expect(await codeOf(doc.history(options))).toBe("INVALID_INPUT");
    }
    expect(await codeOf(client.history({ room: "doc:not-joined" }))).toBe("FORBIDDEN");
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 50; i++) deep = { d: deep };
    expect(await codeOf(doc.setPresence(deep))).not.toBe("accepted");
    // Past one Socket.IO message (64 KB, where the server would close the connection): refused
    // by the client before it is sent, and not kept (it was, and every rejoin sent it again:
    // a connection closed after each reconnect, every request answered DISCONNECTED).
    expect(await codeOf(doc.setPresence({ big: "x".repeat(100_000) }))).toBe("INVALID_INPUT");
    expect(client.state).toBe("connected");
    expect(doc.state).toBe("subscribed");
    // Repeated: a burst of history requests stays bounded by the rate limit, never a crash.
    // UNAVAILABLE is a typed answer too: on a busy box a read can outlive the 2 s Redis
    // command timeout (a CI run saw one), and the client is told to come back later.
    const burst = await Promise.all(Array.from({ length: 30 }, () => codeOf(doc.history({ limit: 1 }))));
    expect(burst.filter((code) => !["accepted", "RATE_LIMITED", "UNAVAILABLE"].includes(code))).toEqual([]);
    expect(drops).toEqual([]);
    expect(client.state).toBe("connected");
    const edits: number[] = [];
    kept.on("doc:edit", ({ n }) => edits.push(n));
    await publish({ room: "doc:x" }, "doc:edit", 9);
    await waitFor("the bystander's event", () => edits.includes(9));
    expect(bystander.state).toBe("connected");
  });
});
