import { type RecoveryPayload, ServerEvent, type WelcomePayload } from "@tether/shared";
import {
  connectRaw,
  loginAs,
  type TestSession,
  userNamedInBody,
  type WelcomedSocket,
  wsToken,
} from "@tether/testkit/http";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { idleFor, waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../src/index.js";
import { startInProcess } from "./fixtures/in-process.js";

/** What a client waits, after the last thing it expects, for a frame that must not come. */
const QUIET_MS = 300;

/**
 * A reconnect that missed nothing gets its recoveries inside `welcome` when the client asks
 * (`auth.recoveryInWelcome`, as the SDK does): one frame, not one per stream. Counted at the raw
 * Socket.IO level: no `recovery` frame besides. One that missed events, or a client that did not
 * ask, gets them as before.
 */
describe("recoveries inside welcome", () => {
  let redis: TestRedis;
  let server: RunningServer;
  const sockets: WelcomedSocket[] = [];

  const connect = async (session: TestSession, extra: Record<string, unknown> = {}) => {
    const socket = await connectRaw(server.url, { token: await wsToken(server.url, session), ...extra });
    sockets.push(socket);
    return socket;
  };
  const framesOf = (socket: WelcomedSocket, event: string) =>
    socket.received.filter(([name]) => name === event).map(([, payload]) => payload);
  /** The socket's frames of delivery (presence aside), by name, in order. */
  const deliveryFrames = (socket: WelcomedSocket) =>
    socket.received.map(([event]) => event).filter((event) => !event.startsWith("presence:"));
  const notes = (socket: WelcomedSocket) => framesOf(socket, "note") as { n: number; offset: string }[];
  /** `user` connects, gets one event on each stream, and leaves: where it stood on each. */
  const awayAfterOneEach = async (user: string) => {
    const session = await loginAs(server.url, user);
    const first = await connect(session, { recoveryInWelcome: true });
    await server.tether.publisher.publish({ user }, "note", { n: 0 });
    await server.tether.publisher.publish({ room: "lobby" }, "note", { n: 0 });
    await waitFor("both events delivered", () => notes(first).length === 2);
    const [mine, lobby] = [notes(first).find((n) => !("room" in n)), notes(first).find((n) => "room" in n)];
    const id = first.id;
    first.close();
    await waitFor("the socket gone on the server", () => !server.tether.io?.of("/").sockets.has(id ?? ""));
    return { session, offset: mine?.offset, rooms: { lobby: lobby?.offset } };
  };

  beforeAll(async () => {
    redis = await startRedis();
    server = await startInProcess(redis.url, { login: userNamedInBody, roomsOf: () => ["lobby"] });
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await server?.close();
    await redis?.close();
  });

  it("a reconnect that missed nothing: welcome carries every stream's recovery, and no recovery frame follows", async () => {
    const { session, offset, rooms } = await awayAfterOneEach("ada");
    const back = await connect(session, { offset, rooms, recoveryInWelcome: true });
    expect(back.welcome.recovery).toEqual([
      { recovered: true, missed: 0 },
      { recovered: true, missed: 0, room: "lobby" },
    ]);
    expect(back.welcome).toMatchObject({ offset, rooms });
    // Live events follow welcome, once each.
    await server.tether.publisher.publish({ user: "ada" }, "note", { n: 1 });
    await waitFor("the next event delivered", () => notes(back).length === 1);
    await idleFor(QUIET_MS);
    expect(framesOf(back, ServerEvent.Recovery)).toEqual([]);
    expect(deliveryFrames(back)).toEqual([ServerEvent.Welcome, "note"]);
  });

  it("an event that arrives while the handshake holds live events comes after the welcome that carries the recoveries", async () => {
    const { session, offset, rooms } = await awayAfterOneEach("fay");
    // A host's middleware runs after Tether's: the socket's live events are held from there until
    // its catch-up. An event published and heard here meanwhile is held, then let through.
    const fanouts = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return Number(text.match(/^tether_fanout_messages_total (\d+)/m)?.[1] ?? 0);
    };
    let published = false;
    server.tether.io?.use(async (socket, next) => {
      if (socket.data.userId === "fay" && !published) {
        published = true;
        const before = await fanouts();
        await server.tether.publisher.publish({ user: "fay" }, "note", { n: 1 });
        await waitFor("the event heard by the instance", async () => (await fanouts()) > before);
      }
      next();
    });
    const back = await connect(session, { offset, rooms, recoveryInWelcome: true });
    await waitFor("the held event delivered", () => notes(back).length === 1);
    expect(published).toBe(true);
    expect(back.welcome.recovery).toEqual([
      { recovered: true, missed: 0 },
      { recovered: true, missed: 0, room: "lobby" },
    ]);
    expect(deliveryFrames(back)).toEqual([ServerEvent.Welcome, "note"]);
    expect(notes(back).map((note) => note.n)).toEqual([1]);
  });

  it("a first connect asks too, but has nothing to recover: welcome without recoveries", async () => {
    const socket = await connect(await loginAs(server.url, "bo"), { recoveryInWelcome: true });
    expect(socket.welcome.recovery).toBeUndefined();
    await idleFor(QUIET_MS);
    expect(framesOf(socket, ServerEvent.Recovery)).toEqual([]);
  });

  it("a reconnect that missed events: welcome, each missed event, then a recovery frame per stream", async () => {
    const { session, offset, rooms } = await awayAfterOneEach("cyd");
    for (let n = 1; n <= 3; n++) await server.tether.publisher.publish({ user: "cyd" }, "note", { n });
    const back = await connect(session, { offset, rooms, recoveryInWelcome: true });
    expect(back.welcome.recovery).toBeUndefined();
    await waitFor("both recoveries", () => framesOf(back, ServerEvent.Recovery).length === 2);
    expect(notes(back).map((note) => note.n)).toEqual([1, 2, 3]);
    expect(framesOf(back, ServerEvent.Recovery)).toEqual(
      expect.arrayContaining([
        { recovered: true, missed: 3 },
        { recovered: true, missed: 0, room: "lobby" },
      ]),
    );
    expect(deliveryFrames(back)[0]).toBe(ServerEvent.Welcome);
  });

  it("a client that does not ask gets recovery frames, as before", async () => {
    const { session, offset, rooms } = await awayAfterOneEach("dot");
    const back = await connect(session, { offset, rooms });
    expect((back.welcome as WelcomePayload).recovery).toBeUndefined();
    await waitFor("both recoveries", () => framesOf(back, ServerEvent.Recovery).length === 2);
    expect(framesOf(back, ServerEvent.Recovery) as RecoveryPayload[]).toEqual([
      { recovered: true, missed: 0 },
      { recovered: true, missed: 0, room: "lobby" },
    ]);
  });

  it("events published while clients reconnect arrive once each, in order, after welcome, whichever way recovery goes", async () => {
    const session = await loginAs(server.url, "eve");
    const first = await connect(session, { recoveryInWelcome: true });
    let offset = first.welcome.offset;
    first.close();
    let published = 0;
    const seen: number[] = [];
    const publish = async (count: number) => {
      for (let i = 0; i < count; i++)
        await server.tether.publisher.publish({ user: "eve" }, "note", { n: ++published });
    };
    for (let round = 0; round < 12; round++) {
      // Some rounds publish while the handshake is under way (replayed, held or live), some do not
      // (the recoveries go in welcome); every other round something is missed while away.
      const [socket] = await Promise.all([connect(session, { offset, recoveryInWelcome: true }), publish(round % 3)]);
      await waitFor("this round's events", () => seen.length + notes(socket).length === published);
      expect(deliveryFrames(socket)[0]).toBe(ServerEvent.Welcome);
      seen.push(...notes(socket).map((note) => note.n));
      offset = notes(socket).at(-1)?.offset ?? socket.welcome.offset;
      socket.close();
      if (round % 2 === 0) await publish(1);
    }
    expect(seen).toEqual(Array.from({ length: published }, (_, i) => i + 1));
  });
});
