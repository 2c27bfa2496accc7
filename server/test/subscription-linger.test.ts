import { ServerEvent } from "@tether/shared";
import {
  connectRaw,
  loginAs,
  type TestSession,
  userNamedInBody,
  type WelcomedSocket,
  wsToken,
} from "@tether/testkit/http";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../src/index.js";
import { startInProcess } from "./fixtures/in-process.js";

/** How many store reads of streams (`history.readAfter`) the instance has made, from its own metrics. */
async function streamReads(server: RunningServer): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith('tether_redis_command_duration_seconds_count{op="history.readAfter"}'));
  return Number(line?.split(" ")[1] ?? 0);
}

/**
 * Subscriptions linger after a socket's last leave (TETHER_SUBSCRIPTION_LINGER): a client that
 * comes back to the same instance finds its user stream's and its session's channels subscribed,
 * and, when the instance heard its stream up to exactly the client's offset, no store read is made.
 * A client that missed events meanwhile still gets them (the instance heard them: its position moved).
 */
describe("subscriptions linger for a client that comes back", () => {
  let redis: TestRedis;
  let lingering: RunningServer;
  let brief: RunningServer;
  let probe: Redis;
  const sockets: WelcomedSocket[] = [];

  const start = (linger: string) =>
    startInProcess(redis.url, { login: userNamedInBody }, { TETHER_SUBSCRIPTION_LINGER: linger });
  /** Instances subscribed to a sharded channel, as Redis counts them. */
  const subscribers = async (channel: string) =>
    ((await probe.call("PUBSUB", "SHARDNUMSUB", channel)) as [string, number])[1];
  const userChannel = (user: string) => `tether:ev:{user:${user}}`;

  /** Connects `user`'s session with a fresh token and the `auth` extras (an offset). */
  const connect = async (server: RunningServer, session: TestSession, extra: Record<string, unknown> = {}) => {
    const socket = await connectRaw(server.url, { token: await wsToken(server.url, session), ...extra });
    sockets.push(socket);
    return socket;
  };
  const recoveryOf = (socket: WelcomedSocket) =>
    socket.received.find(([event]) => event === ServerEvent.Recovery)?.[1] as { recovered: boolean; missed: number };
  /** The offsets of the `note` events a socket got, in order. */
  const notes = (socket: WelcomedSocket) =>
    socket.received
      .filter(([event]) => event === "note")
      .map(([, payload]) => payload as { n: number; offset: string });

  /**
   * `user` logs in on the lingering instance, connects, gets one event and leaves: the session and
   * the offset of that event, once the instance has let the socket go.
   */
  const awayAfterOneEvent = async (user: string) => {
    const session = await loginAs(lingering.url, user);
    const first = await connect(lingering, session);
    await lingering.tether.publisher.publish({ user }, "note", { n: 0 });
    await waitFor("the event delivered", () => notes(first).length === 1);
    const offset = notes(first)[0]?.offset;
    first.close();
    await waitFor("the socket gone on the server", () => lingering.tether.io?.of("/").sockets.size === 0);
    return { session, offset };
  };

  beforeAll(async () => {
    redis = await startRedis();
    probe = new Redis(redis.url);
    // The default linger (30 s), and one short enough to watch it end.
    [lingering, brief] = await Promise.all([start("30s"), start("300ms")]);
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    probe?.disconnect();
    await Promise.all([lingering?.close(), brief?.close()]);
    await redis?.close();
  });

  it("a client back at the offset the instance heard up to: still subscribed, no store read, nothing missed", async () => {
    const { session, offset } = await awayAfterOneEvent("ada");
    expect(await subscribers(userChannel("ada"))).toBe(1);

    const reads = await streamReads(lingering);
    const back = await connect(lingering, session, { offset });
    await waitFor("recovery reported", () => recoveryOf(back) !== undefined);
    expect(recoveryOf(back)).toMatchObject({ recovered: true, missed: 0 });
    expect(await streamReads(lingering)).toBe(reads);
    // Live events follow from there.
    await lingering.tether.publisher.publish({ user: "ada" }, "note", { n: 2 });
    await waitFor("the next event delivered", () => back.received.some(([event]) => event === "note"));
    back.close();
  });

  it("a client that missed events while away gets each of them once, read from the store", async () => {
    const { session, offset } = await awayAfterOneEvent("bea");
    for (let n = 1; n <= 3; n++) await lingering.tether.publisher.publish({ user: "bea" }, "note", { n });

    const reads = await streamReads(lingering);
    const back = await connect(lingering, session, { offset });
    await waitFor("recovery reported", () => recoveryOf(back) !== undefined);
    expect(recoveryOf(back)).toMatchObject({ recovered: true, missed: 3 });
    const notes = back.received
      .filter(([event]) => event === "note")
      .map(([, payload]) => (payload as { n: number }).n);
    expect(notes).toEqual([1, 2, 3]);
    expect(await streamReads(lingering)).toBeGreaterThan(reads);
    back.close();
  });

  it("an event lost with the subscriber connection while the client was away is read from the store, not taken as heard", async () => {
    const { session, offset } = await awayAfterOneEvent("dot");
    // Redis drops the instances' subscriber connections: an event published now reaches no instance.
    await probe.call("CLIENT", "KILL", "TYPE", "pubsub");
    await lingering.tether.publisher.publish({ user: "dot" }, "note", { n: 1 });
    await waitFor("the stream subscribed again", async () => (await subscribers(userChannel("dot"))) === 1);

    const back = await connect(lingering, session, { offset });
    await waitFor("the lost event delivered", () => notes(back).length === 1);
    expect(recoveryOf(back)).toMatchObject({ recovered: true, missed: 1 });
    back.close();
  });

  it("a client that moves to an instance without its stream, at the head its handshake read: no store read, and what follows arrives once", async () => {
    const { session, offset } = await awayAfterOneEvent("eve");
    expect(await subscribers(userChannel("eve"))).toBe(1);
    const reads = await streamReads(brief);
    // The token's consume read the user stream's head on the way: the client is exactly there.
    const moved = await connect(brief, session, { offset });
    await waitFor("recovery reported", () => recoveryOf(moved) !== undefined);
    expect(recoveryOf(moved)).toMatchObject({ recovered: true, missed: 0 });
    expect(await streamReads(brief)).toBe(reads);
    await waitFor("the stream subscribed here too", async () => (await subscribers(userChannel("eve"))) === 2);
    await brief.tether.publisher.publish({ user: "eve" }, "note", { n: 1 });
    await waitFor("the next event delivered", () => notes(moved).length === 1);
    expect(notes(moved).map((note) => note.n)).toEqual([1]);

    // A second tab resuming at a live tab's position here: no read either.
    const second = await connect(brief, session, { offset: notes(moved)[0]?.offset });
    await waitFor("recovery reported", () => recoveryOf(second) !== undefined);
    expect(recoveryOf(second)).toMatchObject({ recovered: true, missed: 0 });
    expect(await streamReads(brief)).toBe(reads);
    await brief.tether.publisher.publish({ user: "eve" }, "note", { n: 2 });
    await waitFor("both tabs get it", () => notes(moved).length === 2 && notes(second).length === 1);
    expect(notes(second).map((note) => note.n)).toEqual([2]);
    moved.close();
    second.close();
  });

  it("past the linger time the instance unsubscribes the stream and the session's topic", async () => {
    const session = await loginAs(brief.url, "cyd");
    const socket = await connect(brief, session);
    const topics = async () => (await probe.call("PUBSUB", "SHARDCHANNELS", "tether:end:*")) as string[];
    expect(await subscribers(userChannel("cyd"))).toBe(1);
    const withSocket = (await topics()).length;
    expect(withSocket).toBeGreaterThan(0);
    socket.close();
    await waitFor(
      "the stream unsubscribed after the linger",
      async () => (await subscribers(userChannel("cyd"))) === 0,
    );
    await waitFor("the session's topic unsubscribed", async () => (await topics()).length === withSocket - 1);
  });
});
