/**
 * Issue 22, history on demand: the `history` socket event (the user's own stream, or a
 * room the socket is in), `tether.history` on the host and `GET /api/history` behind the
 * publish key; bounded in events (TETHER_HISTORY_MAX_EVENTS) and bytes
 * (TETHER_REPLAY_BUFFER), rate-limited like every built-in request. Real redis-server, a
 * host app on a real HTTP server, real socket.io clients.
 */
import { ErrorCode, type HistoryAck, type HistoryEvent, type HistoryRequest } from "@tether/shared";
import type { TestClient } from "@tether/testkit/client";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PUBLISH_KEY, publish, type RoomsHost, startRoomsHost, tab } from "./security/rooms-host.js";

let redis: TestRedis;
let host: RoomsHost;
const opened: TestClient[] = [];
beforeAll(async () => {
  redis = await startRedis();
  host = await startRoomsHost(
    {
      REDIS_URL: redis.url,
      TETHER_HISTORY_MAX_EVENTS: "10",
      TETHER_REPLAY_BUFFER: "2kb",
      TETHER_SOCKET_EVENTS_PER_SECOND: "20",
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
const ask = (t: Tab, request: unknown) =>
  t.client.socket.timeout(5_000).emitWithAck("history", request as HistoryRequest) as Promise<HistoryAck>;
const events = (ack: HistoryAck): HistoryEvent[] => {
  if (!ack.ok) throw new Error(`refused: ${JSON.stringify(ack.error)}`);
  return ack.events;
};
const getHistory = (query: string, key = PUBLISH_KEY) =>
  fetch(`${host.url}/api/history?${query}`, { headers: { authorization: `Bearer ${key}` } });

describe("history on demand over the socket", () => {
  it("the user's own stream: the newest N oldest first with offsets, paging back with `before`, 50 by default", async () => {
    const alice = await tab(host.url, "alice", opened);
    const offsets: string[] = [];
    for (let i = 0; i < 7; i++) offsets.push(await host.tether.publisher.publish({ user: "alice" }, "note", { i }));
    const newest = await ask(alice, { limit: 3 });
    expect(events(newest)).toEqual([4, 5, 6].map((i) => ({ offset: offsets[i], event: "note", data: { i } })));
    expect(newest).toMatchObject({ ok: true, offset: offsets[6], more: true });
    const older = await ask(alice, { limit: 3, before: events(newest)[0]!.offset });
    expect(events(older).map((e) => e.offset)).toEqual(offsets.slice(1, 4));
    const first = await ask(alice, { limit: 3, before: events(older)[0]!.offset });
    expect(events(first).map((e) => e.offset)).toEqual(offsets.slice(0, 1));
    expect(first).toMatchObject({ more: false });
    // No limit: every kept event up to the default (all 7 here), and another user's stream is not read.
    expect(events(await ask(alice, {}))).toHaveLength(7);
    const bob = await tab(host.url, "bob", opened);
    expect(await ask(bob, {})).toMatchObject({ ok: true, events: [], more: false });
  });

  it("a room only once this socket is in it (FORBIDDEN before), and a join from the newest offset goes on from there", async () => {
    const alice = await tab(host.url, "alice", opened);
    for (let i = 0; i < 3; i++) await publish(host.url, "hist-room", "line", { i });
    expect(await ask(alice, { room: "hist-room" })).toMatchObject({ ok: false, error: { code: ErrorCode.Forbidden } });
    const bob = await tab(host.url, "bob", opened);
    expect((await bob.rawJoin("hist-room")).ok).toBe(true);
    const page = events(await ask(bob, { room: "hist-room", limit: 2 }));
    expect(page.map((e) => e.data)).toEqual([{ i: 1 }, { i: 2 }]);
    // A subscription goes on from the newest event history returned: only what came after it.
    await publish(host.url, "hist-room", "line", { i: 3 });
    const carol = await tab(host.url, "alice", opened);
    const joined = await carol.client.socket
      .timeout(5_000)
      .emitWithAck("room:join", { room: "hist-room", offset: page.at(-1)!.offset });
    expect(joined).toMatchObject({ ok: true, recovery: { recovered: true, missed: 1 } });
    await waitFor("the event after the history page", () => carol.of("line", "hist-room").length === 1);
    expect(carol.of("line", "hist-room")[0]).toMatchObject({ i: 3 });
  });

  it("a page is bounded in bytes (TETHER_REPLAY_BUFFER, one event at least)", async () => {
    const alice = await tab(host.url, "alice", opened);
    const big = "x".repeat(900);
    for (let i = 0; i < 4; i++) await host.tether.publisher.publish({ room: "hist-big" }, "blob", { i, big });
    expect((await alice.rawJoin("hist-big")).ok).toBe(true);
    const page = await ask(alice, { room: "hist-big", limit: 10 });
    // 2 KB hold two of these (about 920 bytes each), not three.
    expect(events(page).map((e) => (e.data as { i: number }).i)).toEqual([2, 3]);
    expect(page).toMatchObject({ more: true });
  });

  it("hostile requests get INVALID_INPUT (a typed ack, no stack), the socket and a bystander keep going", async () => {
    const mallory = await tab(host.url, "mallory", opened);
    const bystander = await tab(host.url, "bob", opened);
    await host.tether.publisher.publish({ user: "mallory" }, "note", { i: 0 });
    const hostile: unknown[] = [
      { limit: "5" },
      { limit: -1 },
      { limit: 0 },
      { limit: 1.5 },
      { limit: 1e12 },
      { limit: 11 }, // one past TETHER_HISTORY_MAX_EVENTS
      { before: "not-an-offset" },
      { before: 12 },
      { room: "" },
      { room: "r".repeat(300) },
      { room: { $gt: "" } },
      { extra: true },
      "history",
      [{ limit: 1 }],
    ];
    for (const request of hostile) {
      const ack = await ask(mallory, request);
      expect({ request, ack }).toMatchObject({ request, ack: { ok: false, error: { code: ErrorCode.InvalidInput } } });
      expect(JSON.stringify(ack)).not.toMatch(/at .*\.(ts|js):\d+/);
    }
    // At the bound: allowed.
    expect((await ask(mallory, { limit: 10 })).ok).toBe(true);
    expect(mallory.client.socket.connected).toBe(true);
    expect((await ask(bystander, { limit: 1 })).ok).toBe(true);
  });

  it("a flood of history requests is rate-limited (RATE_LIMITED) without touching a bystander", async () => {
    const mallory = await tab(host.url, "mallory", opened);
    const bystander = await tab(host.url, "bob", opened);
    const acks = await Promise.all(Array.from({ length: 60 }, () => ask(mallory, { limit: 10 })));
    const limited = acks.filter((ack) => !ack.ok && ack.error.code === ErrorCode.RateLimited).length;
    expect(limited).toBeGreaterThanOrEqual(30);
    expect((await ask(bystander, { limit: 1 })).ok).toBe(true);
  });
});

describe("history on demand for the host", () => {
  it("tether.history reads a user's or a room's stream, and refuses bad input with a TetherError", async () => {
    const offsets: string[] = [];
    for (let i = 0; i < 4; i++) offsets.push(await host.tether.publisher.publish({ room: "hist-host" }, "e", { i }));
    const page = await host.tether.history({ room: "hist-host" }, { limit: 2 });
    expect(page).toEqual({
      events: [2, 3].map((i) => ({ offset: offsets[i], event: "e", data: { i } })),
      offset: offsets[3],
      more: true,
    });
    const back = await host.tether.history({ room: "hist-host" }, { before: page.events[0]!.offset });
    expect(back.events.map((e) => e.offset)).toEqual(offsets.slice(0, 2));
    for (const [target, options] of [
      [{ room: "hist-host" }, { limit: 11 }],
      [{ room: "hist-host" }, { before: "nope" }],
      [{ room: "" }, {}],
      [{ nobody: "x" }, {}],
    ] as const) {
      await expect(host.tether.history(target as never, options as never)).rejects.toMatchObject({
        code: ErrorCode.InvalidInput,
      });
    }
    // An offset from an earlier history of the stream (its epoch is gone): refused, not misread.
    const stale = `${offsets[3]!.split(":")[0]}:zzzzzz`;
    await expect(host.tether.history({ room: "hist-host" }, { before: stale })).rejects.toMatchObject({
      code: ErrorCode.InvalidInput,
    });
  });

  it("GET /api/history behind the publish key: the same page, typed 400s, 401 without the key", async () => {
    const offsets: string[] = [];
    for (let i = 0; i < 3; i++) offsets.push(await publish(host.url, "hist-http", "e", { i }));
    const res = await getHistory("target=room:hist-http&limit=2");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toEqual({
      events: [1, 2].map((i) => ({ offset: offsets[i], event: "e", data: { i } })),
      offset: offsets[2],
      more: true,
    });
    const before = await getHistory(`target=room:hist-http&before=${encodeURIComponent(offsets[1]!)}`);
    expect(((await before.json()) as { events: HistoryEvent[] }).events.map((e) => e.offset)).toEqual([offsets[0]]);
    await host.tether.publisher.publish({ user: "alice:2" }, "e", { i: 9 });
    const user = (await (await getHistory("target=user:alice:2")).json()) as { events: HistoryEvent[] };
    expect(user.events.map((e) => e.data)).toEqual([{ i: 9 }]);
    for (const query of [
      "",
      "target=hist-http",
      "target=room:",
      "target=room:hist-http&limit=-1",
      "target=room:hist-http&limit=abc",
      "target=room:hist-http&limit=99999999999",
      "target=room:hist-http&limit=1&limit=2",
      "target=room:a&target=room:b",
      "target[x]=1",
      "target=room:hist-http&before=garbage",
    ]) {
      const bad = await getHistory(query);
      expect({ query, status: bad.status }).toEqual({ query, status: 400 });
      expect(await bad.json()).toMatchObject({ error: { code: ErrorCode.InvalidInput } });
    }
    expect((await getHistory("target=room:hist-http", "wrong-key-0123456789")).status).toBe(401);
    expect((await fetch(`${host.url}/api/history?target=room:hist-http`)).status).toBe(401);
  });
});
