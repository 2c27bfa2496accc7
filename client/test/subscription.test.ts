import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { FetchLike } from "../src/cookies.js";
import {
  createTetherClient,
  type SubscribedEvent,
  type SubscriptionEnd,
  type TetherClient,
  type TetherClientError,
} from "../src/index.js";
import type { FakeSocket } from "./fake-socket.js";

const created = vi.hoisted(() => ({ sockets: [] as FakeSocket[] }));
vi.mock("socket.io-client", async () => {
  const { FakeSocket } = await import("./fake-socket.js");
  return {
    io: (_url: string, options: ConstructorParameters<typeof FakeSocket>[0]) => {
      const socket = new FakeSocket(options);
      created.sockets.push(socket);
      return socket;
    },
  };
});

/** Lets pending fetches and promise chains run (setImmediate is not faked). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

type Events = { server: { "doc:edit": { text: string } } };

function setup(): { client: TetherClient<Events>; socket: FakeSocket } {
  let n = 0;
  const fetch: FetchLike = async () =>
    new Response(JSON.stringify({ token: `t${++n}`, expiresAt: Date.now() + 60_000 }), {
      status: 200,
      headers: { "content-type": "application/json" },
    });
  const client = createTetherClient<Events>({
    url: "http://tether.test",
    fetch,
    random: () => 0,
    reconnectBaseDelayMs: 500,
    staleAfterMs: 0,
  });
  const socket = created.sockets.at(-1);
  if (!socket) throw new Error("no socket created");
  return { client, socket };
}

const joinOk = (offset: string) => ({
  ok: true,
  recovery: { recovered: true, missed: 0 },
  offset,
  members: [{ userId: "u1", connections: 1, data: { cursor: 1 } }],
});
const refusal = (code: string) => ({ ok: false, error: { code, message: code } });
const sent = (socket: FakeSocket, event: string) => socket.acked.filter((a) => a.event === event).map((a) => a.payload);

async function connect(client: TetherClient<Events>, socket: FakeSocket, rooms: Record<string, string> = {}) {
  client.connect();
  await settle();
  socket.accept();
  socket.serverEmit("welcome", { instance: "a", offset: "1-0", rooms });
  await settle();
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });
});
afterEach(() => {
  vi.useRealTimers();
  created.sockets.length = 0;
});

describe("client.subscribe", () => {
  it("may be made before connect(): joins once connected, with its presence data; its listeners see its room only", async () => {
    const { client, socket } = setup();
    socket.answer = (event, payload) => (event === "room:join" ? joinOk("5-0") : payload);
    const doc = client.subscribe("doc:1", { presence: { cursor: 1 } });
    expect(client.room("doc:1")).toBe(doc);
    expect(doc.state).toBe("subscribing");
    const subscribed: SubscribedEvent[] = [];
    const edits: string[] = [];
    doc.on("subscribed", (event) => subscribed.push(event));
    const stop = doc.on("doc:edit", ({ text, offset }) => edits.push(`${text}@${offset}`));
    await settle();
    expect(sent(socket, "room:join")).toEqual([]);

    await connect(client, socket);
    expect(sent(socket, "room:join")).toEqual([{ room: "doc:1", presence: { cursor: 1 } }]);
    expect(doc.state).toBe("subscribed");
    expect(subscribed).toEqual([
      {
        room: "doc:1",
        offset: "5-0",
        resumed: false,
        members: [{ userId: "u1", connections: 1, data: { cursor: 1 } }],
      },
    ]);
    socket.serverEmit("doc:edit", { text: "a", room: "doc:1", offset: "6-0" });
    socket.serverEmit("doc:edit", { text: "other room", room: "doc:2", offset: "9-0" });
    socket.serverEmit("doc:edit", { text: "user stream", offset: "2-0" });
    socket.serverEmit("doc:edit", { text: "a again", room: "doc:1", offset: "6-0" });
    stop();
    socket.serverEmit("doc:edit", { text: "b", room: "doc:1", offset: "7-0" });
    expect(edits).toEqual(["a@6-0"]);
    expect(doc.offset).toBe("7-0");
  });

  it("is kept across a reconnect: the handshake asks for the room from its offset, welcome brings it back, presence is set again", async () => {
    const { client, socket } = setup();
    socket.answer = (event, payload) => (event === "room:join" ? joinOk("5-0") : { ok: true, payload });
    const doc = client.subscribe("doc:1", { presence: { cursor: 1 } });
    const states: string[] = [];
    const subscribed: SubscribedEvent[] = [];
    doc.on("state", (state) => states.push(state));
    doc.on("subscribed", (event) => subscribed.push(event));
    await connect(client, socket);
    socket.serverEmit("doc:edit", { text: "a", room: "doc:1", offset: "6-0" });

    socket.drop();
    expect(doc.state).toBe("subscribing");
    await vi.advanceTimersByTimeAsync(250);
    await settle();
    expect(socket.handshakes.at(-1)).toMatchObject({ rooms: { "doc:1": "6-0" } });
    socket.accept();
    socket.serverEmit("welcome", { instance: "b", offset: "1-0", rooms: { "doc:1": "8-0" } });
    await settle();
    expect(doc.state).toBe("subscribed");
    expect(subscribed.at(-1)).toEqual({ room: "doc:1", offset: "8-0", members: undefined, resumed: true });
    // Joined once; the reconnect's handshake brought the room back, and its presence data is set again.
    expect(sent(socket, "room:join")).toHaveLength(1);
    expect(sent(socket, "presence:set")).toEqual([{ room: "doc:1", data: { cursor: 1 } }]);
    expect(states).toEqual(["subscribed", "subscribing", "subscribed"]);
  });

  it("joins again from its offset when a reconnect did not bring the room back", async () => {
    const { client, socket } = setup();
    socket.answer = (event, payload) => (event === "room:join" ? joinOk("5-0") : payload);
    const doc = client.subscribe("doc:1");
    await connect(client, socket);
    socket.serverEmit("doc:edit", { text: "a", room: "doc:1", offset: "6-0" });
    socket.drop();
    await vi.advanceTimersByTimeAsync(250);
    await settle();
    socket.accept();
    socket.serverEmit("welcome", { instance: "b", offset: "1-0" });
    await settle();
    expect(sent(socket, "room:join")).toEqual([{ room: "doc:1" }, { room: "doc:1", offset: "6-0" }]);
    expect(doc.state).toBe("subscribed");
  });

  it("retries transient refusals (UNAVAILABLE, RATE_LIMITED, timeouts) with the connection's backoff", async () => {
    const { client, socket } = setup();
    const answers = [refusal("UNAVAILABLE"), refusal("RATE_LIMITED"), joinOk("5-0")];
    socket.answer = (event, payload) => (event === "room:join" ? answers.shift() : payload);
    const doc = client.subscribe("doc:1");
    const errors: string[] = [];
    doc.on("error", (error) => errors.push(error.code));
    await connect(client, socket);
    expect(errors).toEqual(["UNAVAILABLE"]);
    expect(doc.state).toBe("subscribing");
    // random() = 0: half of 500 ms; after RATE_LIMITED at least a second (the limit's window).
    await vi.advanceTimersByTimeAsync(249);
    expect(sent(socket, "room:join")).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(errors).toEqual(["UNAVAILABLE", "RATE_LIMITED"]);
    await vi.advanceTimersByTimeAsync(999);
    expect(sent(socket, "room:join")).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(sent(socket, "room:join")).toHaveLength(3);
    expect(doc.state).toBe("subscribed");
  });

  it("subscriptions join one at a time, and a RATE_LIMITED join holds the others' joins too", async () => {
    const { client, socket } = setup();
    let limited = 1;
    let inFlight = 0;
    let most = 0;
    socket.answer = async (event, payload) => {
      if (event !== "room:join") return payload;
      inFlight += 1;
      most = Math.max(most, inFlight);
      await Promise.resolve();
      inFlight -= 1;
      return limited-- > 0 ? refusal("RATE_LIMITED") : joinOk("5-0");
    };
    const subs = Array.from({ length: 5 }, (_, i) => client.subscribe(`r:${i}`));
    await connect(client, socket);
    // The first was refused: nobody else joined during the pause.
    expect(sent(socket, "room:join")).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(sent(socket, "room:join")).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(subs.every((sub) => sub.state === "subscribed")).toBe(true);
    expect(sent(socket, "room:join")).toHaveLength(6);
    expect(most).toBe(1);
  });

  it("a FORBIDDEN ends it with an `ended` event; subscribing again makes a new one", async () => {
    const { client, socket } = setup();
    socket.answer = (event, payload) => (event === "room:join" ? refusal("FORBIDDEN") : payload);
    const doc = client.subscribe("doc:1");
    const ended: SubscriptionEnd[] = [];
    doc.on("ended", (end) => ended.push(end));
    await connect(client, socket);
    expect(doc.state).toBe("ended");
    expect(ended).toHaveLength(1);
    expect(ended[0]).toMatchObject({ reason: "refused", error: { code: "FORBIDDEN" } });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sent(socket, "room:join")).toHaveLength(1);
    expect(client.subscribe("doc:1")).not.toBe(doc);
  });

  it("room:revoked at a reconnect ends it as refused (FORBIDDEN)", async () => {
    const { client, socket } = setup();
    socket.answer = (event, payload) => (event === "room:join" ? joinOk("5-0") : payload);
    const doc = client.subscribe("doc:1");
    const ended: SubscriptionEnd[] = [];
    doc.on("ended", (end) => ended.push(end));
    await connect(client, socket);
    socket.serverEmit("room:revoked", { room: "doc:1" });
    expect(doc.state).toBe("ended");
    expect((ended[0] as { error: TetherClientError }).error.code).toBe("FORBIDDEN");
  });

  it("leave() leaves the room, ends it (`left`) and forgets its offset; client.leave ends it too", async () => {
    const { client, socket } = setup();
    socket.answer = (event, _payload) => (event === "room:join" ? joinOk("5-0") : { ok: true });
    const doc = client.subscribe("doc:1");
    const other = client.subscribe("doc:2");
    const ended: SubscriptionEnd[] = [];
    doc.on("ended", (end) => ended.push(end));
    other.on("ended", (end) => ended.push(end));
    await connect(client, socket);
    expect(client.roomOffsets).toEqual({ "doc:1": "5-0", "doc:2": "5-0" });
    await doc.leave();
    await doc.leave();
    await client.leave("doc:2");
    expect(ended).toEqual([{ reason: "left" }, { reason: "left" }]);
    expect(sent(socket, "room:leave")).toEqual([{ room: "doc:1" }, { room: "doc:2" }]);
    expect(client.roomOffsets).toEqual({});
  });

  it("history() asks for the room's or the user's last events; presence() and setPresence() reach the room", async () => {
    const { client, socket } = setup();
    const page = {
      ok: true,
      events: [{ offset: "4-0", event: "doc:edit", data: { text: "x" } }],
      offset: "5-0",
      more: true,
    };
    socket.answer = (event, payload) => {
      if (event === "room:join") return joinOk("5-0");
      if (event === "history")
        return (payload as { before?: string }).before === "bad" ? refusal("INVALID_INPUT") : page;
      if (event === "room:members") return { ok: true, members: [{ userId: "u1", connections: 1, data: { a: 1 } }] };
      return { ok: true };
    };
    const doc = client.subscribe("doc:1");
    await expect(client.history()).rejects.toMatchObject({ code: "NOT_CONNECTED" });
    await connect(client, socket);
    await expect(doc.history({ limit: 2 })).resolves.toEqual({ events: page.events, offset: "5-0", more: true });
    await expect(client.history({ before: "3-0" })).resolves.toMatchObject({ more: true });
    await expect(client.history({ before: "bad" })).rejects.toMatchObject({ code: "INVALID_INPUT" });
    expect(sent(socket, "history")).toEqual([{ room: "doc:1", limit: 2 }, { before: "3-0" }, { before: "bad" }]);
    await expect(doc.presence()).resolves.toEqual([{ userId: "u1", connections: 1, data: { a: 1 } }]);
    await doc.setPresence({ cursor: 9 });
    expect(sent(socket, "presence:set")).toEqual([{ room: "doc:1", data: { cursor: 9 } }]);
  });

  it("presence events of its room reach its listeners with the member's data", async () => {
    const { client, socket } = setup();
    socket.answer = (event, payload) => (event === "room:join" ? joinOk("5-0") : payload);
    const doc = client.subscribe("doc:1");
    const seen: unknown[] = [];
    doc.on("presence:update", ({ userId, data }) => seen.push([userId, data]));
    await connect(client, socket);
    socket.serverEmit("presence:update", { room: "doc:1", userId: "u2", user: "u2", data: { cursor: 3 } });
    socket.serverEmit("presence:update", { room: "doc:2", userId: "u3", user: "u3", data: {} });
    expect(seen).toEqual([["u2", { cursor: 3 }]]);
  });

  it("a subscription made while connected joins at once; subscribing again returns the same one", async () => {
    const { client, socket } = setup();
    socket.answer = (event, payload) => (event === "room:join" ? joinOk("5-0") : payload);
    await connect(client, socket);
    const doc = client.subscribe("doc:1");
    for (let i = 0; i < 100; i++) expect(client.subscribe("doc:1")).toBe(doc);
    await settle();
    expect(sent(socket, "room:join")).toEqual([{ room: "doc:1" }]);
    expect(doc.state).toBe("subscribed");
  });
});
