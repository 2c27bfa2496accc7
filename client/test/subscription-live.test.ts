import { waitFor } from "@tether/testkit/wait";
import { describe, expect, it } from "vitest";
import type { SubscriptionEnd, TetherClient } from "../src/index.js";
import { liveRooms } from "./live-rooms.js";

type Events = { server: { "doc:edit": { n: number } } };

/**
 * Subscriptions against a real server (one instance behind a proxy that can cut every
 * connection, real Redis): joined once connected, kept across a lost connection with
 * the events published meanwhile delivered once, and ended by the server's refusals.
 */
describe("client.subscribe against a real server", () => {
  const rooms = liveRooms({ alice: ["doc:1", "doc:2"], bob: [], carol: ["*"] });
  const { setPolicy } = rooms;
  const user = (name: string): Promise<TetherClient<Events>> => rooms.user<Events>(name);
  const publish = (room: string, n: number) => rooms.publish({ room }, "doc:edit", { n });

  it("made before connect(), it joins; a lost connection keeps it, and what was published meanwhile arrives once", async () => {
    const client = await user("alice");
    const doc = client.subscribe("doc:1");
    const other = client.subscribe("doc:2");
    const seen: number[] = [];
    const otherSeen: number[] = [];
    const resumed: boolean[] = [];
    doc.on("doc:edit", ({ n }) => seen.push(n));
    other.on("doc:edit", ({ n }) => otherSeen.push(n));
    doc.on("subscribed", (event) => resumed.push(event.resumed));
    client.connect();
    await waitFor("subscribed", () => doc.state === "subscribed" && other.state === "subscribed");
    await publish("doc:1", 1);
    await publish("doc:2", 100);
    await waitFor("the first edit", () => seen.length === 1 && otherSeen.length === 1);

    rooms.proxy.refusing = true;
    rooms.proxy.cut();
    await waitFor("the subscription waiting for the connection", () => doc.state === "subscribing");
    await publish("doc:1", 2);
    await publish("doc:1", 3);
    rooms.proxy.refusing = false;
    await waitFor("subscribed again", () => doc.state === "subscribed" && client.state === "connected");
    await publish("doc:1", 4);
    await waitFor("every edit", () => seen.length >= 4);
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(otherSeen).toEqual([100]);
    expect(resumed).toEqual([false, true]);
  });

  it("an ephemeral event of its room reaches the subscription, without an offset, and leaves its offset alone", async () => {
    const client = await user("alice");
    const doc = client.subscribe("doc:1");
    const seen: unknown[] = [];
    doc.on("doc:edit", (payload) => seen.push(payload));
    client.connect();
    await waitFor("subscribed", () => doc.state === "subscribed");
    const before = doc.offset;
    await rooms.publish({ room: "doc:1" }, "doc:edit", { n: 42 }, { ephemeral: true }); // 202, or it throws
    await waitFor("the ephemeral edit", () => seen.length === 1);
    expect(seen[0]).toMatchObject({ n: 42, room: "doc:1" });
    expect((seen[0] as { offset?: string }).offset).toBeUndefined();
    expect(doc.offset).toBe(before);
  });

  it("onAny hears every server event of its room only (app events, presence), not its own events; its stop removes it", async () => {
    const client = await user("alice");
    const doc = client.subscribe("doc:1");
    const other = client.subscribe("doc:2");
    const heard: { event: string; room: unknown }[] = [];
    const stop = doc.onAny((event, payload) => heard.push({ event, room: (payload as { room?: unknown }).room }));
    const otherEdits: number[] = [];
    other.on("doc:edit", ({ n }) => otherEdits.push(n));
    client.connect();
    await waitFor("subscribed", () => doc.state === "subscribed" && other.state === "subscribed");
    const carol = await user("carol");
    const carolDoc = carol.subscribe("doc:1");
    carol.connect();
    await waitFor("carol subscribed", () => carolDoc.state === "subscribed");
    await publish("doc:2", 7);
    await publish("doc:1", 1);
    await waitFor("doc:1's edit and carol's arrival", () =>
      ["doc:edit", "presence:join"].every((event) => heard.some((h) => h.event === event)),
    );
    await waitFor("doc:2's edit", () => otherEdits.length === 1);
    expect(heard.filter((h) => h.event === "doc:edit")).toEqual([{ event: "doc:edit", room: "doc:1" }]);
    expect(heard).toContainEqual({ event: "presence:join", room: "doc:1" });
    expect(heard.every((h) => h.room === "doc:1")).toBe(true);
    expect(heard.map((h) => h.event)).not.toContain("subscribed");
    expect(heard.map((h) => h.event)).not.toContain("state");

    stop();
    const count = heard.length;
    const edits: number[] = [];
    doc.on("doc:edit", ({ n }) => edits.push(n));
    await publish("doc:1", 2);
    await waitFor("the second edit on `on`", () => edits.length === 1);
    expect(heard).toHaveLength(count);
  });

  it("a room canJoin refuses ends the subscription (FORBIDDEN); a bystander keeps its socket and its room", async () => {
    const bystander = await user("alice");
    const kept = bystander.subscribe("doc:1");
    bystander.connect();
    await waitFor("the bystander subscribed", () => kept.state === "subscribed");

    const client = await user("bob");
    const ends: SubscriptionEnd[] = [];
    // Hostile: the same forbidden room asked for again and again, and a name past the bound.
    const doc = client.subscribe("doc:1");
    doc.on("ended", (end) => ends.push(end));
    const huge = client.subscribe("x".repeat(10_000));
    huge.on("ended", (end) => ends.push(end));
    client.connect();
    await waitFor("both ended", () => ends.length === 2);
    expect(ends.map((end) => (end.reason === "refused" ? end.error.code : end.reason)).sort()).toEqual([
      "FORBIDDEN",
      "INVALID_INPUT",
    ]);
    for (let i = 0; i < 20; i++) {
      const again = client.subscribe("doc:1");
      await waitFor("refused again", () => again.state === "ended");
    }
    expect(client.state).toBe("connected");
    const seen: number[] = [];
    kept.on("doc:edit", ({ n }) => seen.push(n));
    await publish("doc:1", 7);
    await waitFor("the bystander's event", () => seen.includes(7));
    expect(bystander.state).toBe("connected");
  });

  it("at the server's bound of rooms (100 a socket), the 101st subscription ends with INVALID_INPUT; the others stay", async () => {
    const client = await user("carol");
    const subscriptions = Array.from({ length: 101 }, (_, i) => client.subscribe(`bound:${i}`));
    const codes: string[] = [];
    for (const sub of subscriptions)
      sub.on("ended", (end) => codes.push(end.reason === "refused" ? end.error.code : end.reason));
    const errors: string[] = [];
    for (const sub of subscriptions) sub.on("error", (error) => errors.push(error.code));
    client.connect();
    await waitFor("every subscription settled", () => subscriptions.every((sub) => sub.state !== "subscribing"));
    const ended = subscriptions.filter((sub) => sub.state === "ended");
    expect(ended).toHaveLength(1);
    expect(codes).toEqual(["INVALID_INPUT"]);
    // Joined in turn: few refusals, far from the socket's limit of refused events (20 a minute).
    expect(errors.length).toBeLessThan(10);
    expect(subscriptions.filter((sub) => sub.state === "subscribed")).toHaveLength(100);
    expect(Object.keys(client.roomOffsets)).toHaveLength(100);
    expect(client.state).toBe("connected");
  });

  it("a room no longer allowed at a reconnect ends it (room:revoked → FORBIDDEN)", async () => {
    setPolicy({ alice: ["doc:1", "doc:2"], bob: [], carol: ["*"] });
    const client = await user("alice");
    const doc = client.subscribe("doc:2");
    const ends: SubscriptionEnd[] = [];
    doc.on("ended", (end) => ends.push(end));
    client.connect();
    await waitFor("subscribed", () => doc.state === "subscribed");
    setPolicy({ alice: ["doc:1"], bob: [], carol: ["*"] });
    rooms.proxy.cut();
    await waitFor("ended", () => ends.length === 1);
    expect(ends[0]).toMatchObject({ reason: "refused", error: { code: "FORBIDDEN" } });
    expect(client.roomOffsets["doc:2"]).toBeUndefined();
  });
});
