import { ServerEvent } from "@tether/shared";
import { connectRaw, loginAs, post, userNamedInBody, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../src/index.js";
import type { RedisClient } from "../src/store/redis-connection.js";
import { startInProcess } from "./fixtures/in-process.js";

const EVENTS = 5;

/** What one instance's subscriber connection got from Redis, by channel: pub/sub (`message`) and sharded (`smessage`). */
interface Heard {
  plain: string[];
  sharded: string[];
}

function listen(server: RunningServer): Heard {
  const { backend } = server.tether;
  if (backend.kind !== "redis") throw new Error("a Redis backend was expected");
  const heard: Heard = { plain: [], sharded: [] };
  const sub: RedisClient = backend.sub;
  sub.on("message", (channel: string) => heard.plain.push(channel));
  sub.on("smessage", (channel: string) => heard.sharded.push(channel));
  return heard;
}

const ticks = (socket: WelcomedSocket) => socket.received.filter(([event]) => event === "tick").length;

/**
 * Issue 21, item 6: routing guarded by tests. An instance hears, at the Redis level, only the
 * streams and the session ends of its own sockets: were events or session ends routed through
 * one channel every instance listens to, the other instance would hear them, and this fails.
 */
describe("routing: an instance hears only what its own sockets need", () => {
  let redis: TestRedis;
  let a: RunningServer;
  let b: RunningServer;
  let heardByA: Heard;
  let heardByB: Heard;
  const sockets: WelcomedSocket[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const start = () => startInProcess(redis.url, { login: userNamedInBody });
    [a, b] = await Promise.all([start(), start()]);
    heardByA = listen(a);
    heardByB = listen(b);
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await Promise.all([a?.close(), b?.close()]);
    await redis?.close();
  });

  it("a stream's events reach only the instance with its sockets", async () => {
    const alice = await connectRaw(a.url, { token: await wsToken(a.url, await loginAs(a.url, "alice")) });
    const bob = await connectRaw(b.url, { token: await wsToken(b.url, await loginAs(b.url, "bob")) });
    sockets.push(alice, bob);
    for (let n = 0; n < EVENTS; n++) {
      await a.tether.publisher.publish({ user: "alice" }, "tick", { n });
      await b.tether.publisher.publish({ user: "bob" }, "tick", { n });
    }
    await waitFor("every event delivered", () => ticks(alice) === EVENTS && ticks(bob) === EVENTS);
    const events = (heard: Heard) => heard.sharded.filter((channel) => channel.startsWith("tether:ev:"));
    expect(events(heardByA)).toEqual(Array(EVENTS).fill("tether:ev:{user:alice}"));
    expect(events(heardByB)).toEqual(Array(EVENTS).fill("tether:ev:{user:bob}"));
  });

  it("a session's end is routed on the session's own sharded channel, heard only where its sockets are", async () => {
    const session = await loginAs(a.url, "carol");
    const carol = await connectRaw(a.url, { token: await wsToken(a.url, session) });
    const dave = await connectRaw(b.url, { token: await wsToken(b.url, await loginAs(b.url, "dave")) });
    sockets.push(carol, dave);
    const before = { a: heardByA.sharded.length, bPlain: heardByB.plain.length, bSharded: heardByB.sharded.length };
    // The logout lands on B, which holds none of the session's sockets.
    expect((await post(`${b.url}/api/auth/logout`, undefined, { cookie: session.cookie })).status).toBe(204);
    await waitFor("carol's session ended on A", () => !carol.connected);
    expect(carol.received.some(([event]) => event === ServerEvent.SessionEnded)).toBe(true);
    const ends = heardByA.sharded.slice(before.a).filter((channel) => channel.startsWith("tether:end:"));
    expect(ends).toHaveLength(1);
    // B heard nothing of it: no global control message, no session channel of its own sockets'.
    expect(heardByB.plain.slice(before.bPlain)).toEqual([]);
    expect(heardByB.sharded.slice(before.bSharded).filter((channel) => !channel.startsWith("tether:probe:"))).toEqual(
      [],
    );
    expect(dave.connected).toBe(true);
  });
});
