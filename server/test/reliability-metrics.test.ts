import { writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { AwayMsSchema, MAX_REPORTED_AWAY_MS, type RecoveryPayload, type RoomJoinAck } from "@tether/shared";
import { fetchFrom, nextClientAddress } from "@tether/testkit/address";
import { connectRaw, localAddressOption, type TestSession, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { LOG_DIR, startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublisher, loadConfig, type WorkerPublisher } from "../src/index.js";
import { RECONNECT_DURATION_BUCKETS, REPLAY_SIZE_BUCKETS } from "../src/observability/metrics.js";
import { unrecoverable } from "../src/realtime/recovery.js";

/** The rooms suite's host: a login of the API key plus a user name, and `canJoin` from a policy file. */
const HOST = resolve(import.meta.dirname, "rooms/host.ts");
const API_KEY = "reliability-metrics-api-key-0123456789";
/** Events a stream keeps: a client away for more than this many is told `trimmed`. */
const MAX_EVENTS = 10;
const INSTANCE = `reliability-metrics-${process.pid}`;

/** A Prometheus series key: the name and its labels, sorted (the exposition's order is the library's). */
function series(name: string, labels: Record<string, string> = {}): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return `${name}{${pairs.sort().join(",")}}`;
}

/** Every sample of a Prometheus text exposition, by series key. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries(
      [...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => [k ?? "", v ?? ""]),
    );
    samples.set(series(match[1] ?? "", labels), Number(match[3]));
  }
  return samples;
}

/** What moved between two scrapes. */
const moved =
  (before: Map<string, number>, after: Map<string, number>) =>
  (name: string, labels: Record<string, string> = {}): number => {
    const key = series(name, labels);
    return (after.get(key) ?? 0) - (before.get(key) ?? 0);
  };

describe("reliability you can see: time to reconnect, replay sizes, recovery outcomes by reason", () => {
  let redis: TestRedis;
  let server: TestInstance;
  let publisher: WorkerPublisher;
  const sockets: Socket[] = [];
  const policyFile = join(tmpdir(), `tether-reliability-policy-${process.pid}.json`);

  beforeAll(async () => {
    writeFileSync(policyFile, JSON.stringify({ ann: ["*"], bea: ["*"] }));
    redis = await startRedis();
    const env = { REDIS_URL: redis.url, TETHER_RECOVERY_MAX_EVENTS: String(MAX_EVENTS) };
    server = await startInstance(
      { ...env, TETHER_API_KEY: API_KEY, ROOMS_POLICY: policyFile, TETHER_INSTANCE_ID: INSTANCE },
      { main: HOST },
    );
    publisher = await createPublisher(loadConfig({ ...env, LOG_LEVEL: "silent" }));
  });

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await publisher?.close();
    await server?.kill();
    await redis?.close();
  });

  async function scrape(): Promise<Map<string, number>> {
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    return parseExposition(await res.text());
  }

  async function loginAs(user: string): Promise<TestSession> {
    const address = nextClientAddress();
    const res = await fetchFrom(address)(`${server.url}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ apiKey: API_KEY, user }),
    });
    if (res.status !== 200) throw new Error(`login as ${user} failed: ${res.status}`);
    return { cookie: (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "", address };
  }

  async function raw(session: TestSession, auth: Record<string, unknown>): Promise<WelcomedSocket> {
    const socket = await connectRaw(server.url, { token: await wsToken(server.url, session), ...auth });
    sockets.push(socket);
    return socket;
  }

  const recoveryOf = (socket: WelcomedSocket, room?: string) =>
    waitFor("recovery", () => {
      const found = socket.received.find(
        ([event, payload]) => event === "recovery" && (payload as RecoveryPayload).room === room,
      );
      return found?.[1] as RecoveryPayload | undefined;
    });

  /**
   * One raw socket.io-client that reconnects by itself, as a browser tab would:
   * before every handshake it presents a fresh token (or the last resume ticket),
   * the offsets it last saw, and `extra` (what the SDK adds: `awayMs`). `cut()`
   * drops the transport and holds the next handshake until `release()`.
   */
  async function reconnecting(session: TestSession) {
    const state = {
      offset: undefined as string | undefined,
      rooms: {} as Record<string, string>,
      ticket: undefined as string | undefined,
      useTicket: false,
      extra: {} as Record<string, unknown>,
      welcomes: 0,
      received: [] as [string, unknown][],
    };
    let held: Promise<void> = Promise.resolve();
    let release = () => {};
    const socket: Socket = io(server.url, {
      transports: ["websocket"],
      forceNew: true,
      reconnectionDelay: 20,
      reconnectionDelayMax: 100,
      ...localAddressOption(session.address ?? nextClientAddress()),
      auth: (cb) => {
        void held.then(async () => {
          const credential =
            state.useTicket && state.ticket ? { ticket: state.ticket } : { token: await wsToken(server.url, session) };
          cb({ ...credential, offset: state.offset, rooms: state.rooms, ...state.extra });
        });
      },
    });
    sockets.push(socket);
    socket.onAny((event: string, payload: { offset?: unknown; room?: unknown; rooms?: unknown; ticket?: unknown }) => {
      state.received.push([event, payload]);
      if (event === "welcome") {
        state.welcomes += 1;
        state.ticket = typeof payload.ticket === "string" ? payload.ticket : undefined;
        Object.assign(state.rooms, payload.rooms);
      }
      if (typeof payload?.offset !== "string") return;
      if (typeof payload.room === "string") state.rooms[payload.room] = payload.offset;
      else state.offset = payload.offset;
    });
    await waitFor("the first welcome", () => state.welcomes === 1);
    return {
      socket,
      state,
      async cut() {
        held = new Promise((done) => {
          release = done;
        });
        socket.io.engine.close();
        await waitFor("the cut", () => !socket.connected);
      },
      /** Lets the held handshake go with `extra`; resolves with the recoveries of that connect, once welcomed. */
      async reconnect(extra: Record<string, unknown>, recoveries: number): Promise<RecoveryPayload[]> {
        const welcomes = state.welcomes;
        const from = state.received.length;
        state.extra = extra;
        release();
        await waitFor("the reconnect", () => state.welcomes === welcomes + 1);
        const since = () =>
          state.received
            .slice(from)
            .filter(([event]) => event === "recovery")
            .map(([, payload]) => payload as RecoveryPayload);
        await waitFor(`${recoveries} recoveries`, () => since().length === recoveries);
        return since();
      },
    };
  }

  it("a forced reconnect reporting awayMs 1500: counted once in the 2.5 s bucket, by credential; the replays of its streams observed by size", async () => {
    const tab = await reconnecting(await loginAs("ann"));
    const join = (await tab.socket.timeout(5_000).emitWithAck("room:join", { room: "doc:m" })) as RoomJoinAck;
    expect(join.ok).toBe(true);
    if (join.ok) tab.state.rooms["doc:m"] = join.offset;

    const before = await scrape();
    await tab.cut();
    for (let n = 1; n <= 2; n++) await publisher.publish({ user: "ann" }, "note", { n });
    for (let n = 1; n <= 3; n++) await publisher.publish({ room: "doc:m" }, "edit", { n });
    const recoveries = await tab.reconnect({ awayMs: 1_500 }, 2);
    expect(recoveries).toContainEqual({ recovered: true, missed: 2 });
    expect(recoveries).toContainEqual({ recovered: true, missed: 3, room: "doc:m" });
    const delta = moved(before, await scrape());

    const away = "tether_reconnect_duration_seconds";
    expect(delta(`${away}_count`, { credential: "token" })).toBe(1);
    expect(delta(`${away}_sum`, { credential: "token" })).toBeCloseTo(1.5, 9);
    expect(delta(`${away}_bucket`, { credential: "token", le: "1" })).toBe(0);
    expect(delta(`${away}_bucket`, { credential: "token", le: "2.5" })).toBe(1);
    expect(delta(`${away}_count`, { credential: "ticket" })).toBe(0);

    const size = "tether_replay_size_events";
    expect(delta(`${size}_count`, { stream: "user" })).toBe(1);
    expect(delta(`${size}_sum`, { stream: "user" })).toBe(2);
    expect(delta(`${size}_bucket`, { stream: "user", le: "1" })).toBe(0);
    expect(delta(`${size}_bucket`, { stream: "user", le: "5" })).toBe(1);
    expect(delta(`${size}_count`, { stream: "room" })).toBe(1);
    expect(delta(`${size}_sum`, { stream: "room" })).toBe(3);
    expect(delta("tether_recoveries_total", { recovered: "true", reason: "none" })).toBe(2);
    expect(delta("tether_reconnects_total")).toBe(1);

    // The next one presents the resume ticket instead of a token: 40 ms, the first bucket.
    tab.state.useTicket = true;
    const ticketBefore = await scrape();
    await tab.cut();
    expect(await tab.reconnect({ awayMs: 40 }, 2)).toContainEqual({ recovered: true, missed: 0 });
    const ticketDelta = moved(ticketBefore, await scrape());
    expect(ticketDelta("tether_ws_tokens_total", { result: "ticket" })).toBe(1);
    expect(ticketDelta(`${away}_count`, { credential: "ticket" })).toBe(1);
    expect(ticketDelta(`${away}_bucket`, { credential: "ticket", le: "0.05" })).toBe(1);
    expect(ticketDelta(`${away}_count`, { credential: "token" })).toBe(0);
    // Nothing missed is a replay of 0: le="0".
    expect(ticketDelta(`${size}_bucket`, { stream: "user", le: "0" })).toBe(1);
  });

  it("a reconnect from a trimmed offset, and a room joined from one: recovered:false with reason trimmed, counted by reason, no replay observed", async () => {
    const tab = await reconnecting(await loginAs("bea"));
    const before = await scrape();
    await tab.cut();
    for (let n = 1; n <= MAX_EVENTS + 5; n++) await publisher.publish({ user: "bea" }, "note", { n });
    const [recovery] = await tab.reconnect({ awayMs: 1_500 }, 1);
    expect(recovery).toEqual({ recovered: false, missed: MAX_EVENTS, offset: expect.any(String), reason: "trimmed" });

    const first = await publisher.publish({ room: "doc:t" }, "edit", { n: 0 });
    for (let n = 1; n <= MAX_EVENTS + 5; n++) await publisher.publish({ room: "doc:t" }, "edit", { n });
    const join = (await tab.socket
      .timeout(5_000)
      .emitWithAck("room:join", { room: "doc:t", offset: first })) as RoomJoinAck;
    // The ack carries where the room stands as its own `offset`.
    expect(join).toMatchObject({
      ok: true,
      recovery: { recovered: false, missed: MAX_EVENTS, room: "doc:t", reason: "trimmed" },
      offset: expect.any(String),
    });

    const delta = moved(before, await scrape());
    expect(delta("tether_recoveries_total", { recovered: "false", reason: "trimmed" })).toBe(2);
    expect(delta("tether_recoveries_total", { recovered: "true", reason: "none" })).toBe(0);
    expect(delta("tether_replay_size_events_count", { stream: "user" })).toBe(0);
    expect(delta("tether_replay_size_events_count", { stream: "room" })).toBe(0);
    expect(delta("tether_reconnect_duration_seconds_count", { credential: "token" })).toBe(1);
  });

  it("the other reasons: invalid (not an offset, or one ahead of the stream), reset (the stream lost; another stream's epoch)", async () => {
    const cy = await loginAs("cy");
    const before = await scrape();
    for (const offset of ["not-an-offset", 42, "999999999999999-0"]) {
      const socket = await raw(cy, { offset });
      expect(await recoveryOf(socket)).toEqual({
        recovered: false,
        missed: 0,
        offset: expect.any(String),
        reason: "invalid",
      });
      socket.close();
    }
    await publisher.publish({ user: "cy" }, "note", { n: 1 });
    const connected = async () => (await scrape()).get(series("tether_connected_sockets")) ?? Number.NaN;
    const others = await connected();
    const seen = await raw(cy, {});
    const lastSeen = seen.welcome.offset;
    seen.close();
    // Until the instance has seen it leave, `seen` is a live socket of the stream: the new epoch's
    // first event, should it arrive before the close, would rightly be reported to it as a reset.
    await waitFor("the instance to see the socket leave", async () => (await connected()) === others);
    // Redis lost the stream (FLUSHALL, eviction, a restart without persistence); publishing goes on in a new epoch.
    await redis.client().del("tether:stream:{user:cy}", "tether:stream-meta:{user:cy}");
    await publisher.publish({ user: "cy" }, "note", { n: 2 });
    expect(await recoveryOf(await raw(cy, { offset: lastSeen }))).toMatchObject({ recovered: false, reason: "reset" });
    // Another user's offset carries that stream's epoch: it reads as another epoch of this one.
    const othersOffset = await publisher.publish({ user: "someone-else" }, "note", { n: 1 });
    expect(await recoveryOf(await raw(cy, { offset: othersOffset }))).toMatchObject({
      recovered: false,
      reason: "reset",
    });

    const delta = moved(before, await scrape());
    expect(delta("tether_recoveries_total", { recovered: "false", reason: "invalid" })).toBe(3);
    expect(delta("tether_recoveries_total", { recovered: "false", reason: "reset" })).toBe(2);
  });

  it("a bad awayMs is ignored, an absurd one capped at 24 h: never a refused handshake, never an error", async () => {
    const dee = await loginAs("dee");
    const before = await scrape();
    const bad: unknown[] = ["x", -5, null, "1500", {}, true, [1500]];
    for (const awayMs of bad) {
      const socket = await raw(dee, { awayMs });
      expect(await socket.emitWithAck("echo", awayMs)).toEqual(awayMs);
      socket.close();
    }
    const afterBad = await scrape();
    const ignored = moved(before, afterBad);
    expect(ignored("tether_handshakes_total", { result: "ok" })).toBe(bad.length);
    for (const credential of ["token", "ticket"]) {
      expect(ignored("tether_reconnect_duration_seconds_count", { credential })).toBe(0);
      expect(ignored("tether_reconnect_duration_seconds_sum", { credential })).toBe(0);
    }

    (await raw(dee, { awayMs: 1e12 })).close();
    const capped = moved(afterBad, await scrape());
    expect(capped("tether_reconnect_duration_seconds_count", { credential: "token" })).toBe(1);
    expect(capped("tether_reconnect_duration_seconds_sum", { credential: "token" })).toBe(MAX_REPORTED_AWAY_MS / 1000);
    expect(capped("tether_reconnect_duration_seconds_bucket", { credential: "token", le: "300" })).toBe(0);
    expect(capped("tether_reconnect_duration_seconds_bucket", { credential: "token", le: "+Inf" })).toBe(1);

    const log = await readFile(join(LOG_DIR, `${INSTANCE}.log`), "utf8");
    expect(log).not.toContain("handshake failed");
    expect(log).not.toMatch(/"level":(50|60)/);
  });
});

describe("the reliability metrics' definitions", () => {
  it("awayMs: a finite non-negative number of ms, capped at 24 h", () => {
    expect(AwayMsSchema.safeParse(1_500).data).toBe(1_500);
    expect(AwayMsSchema.safeParse(0).data).toBe(0);
    expect(AwayMsSchema.safeParse(1e12).data).toBe(24 * 60 * 60 * 1000);
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, "1500", null])
      expect(AwayMsSchema.safeParse(bad).success).toBe(false);
  });

  it("buckets: 50 ms to 5 min of time away; 0 to 5,000 events replayed", () => {
    expect(RECONNECT_DURATION_BUCKETS).toEqual([0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]);
    expect(REPLAY_SIZE_BUCKETS).toEqual([0, 1, 5, 10, 50, 100, 500, 1000, 5000]);
  });

  it("why a position cannot be recovered: trimmed, reset or invalid", () => {
    const read = { last: "100-0", epoch: "e1", maxDeleted: "50-0", length: 10, entries: [] };
    expect(unrecoverable({ id: "60-0", epoch: "e1" }, read)).toBeUndefined();
    expect(unrecoverable({ id: "40-0", epoch: "e1" }, read)).toEqual({ missed: 10, reason: "trimmed" });
    expect(unrecoverable({ id: "60-0", epoch: "e0" }, read)).toEqual({ missed: 10, reason: "reset" });
    // Ahead of the stream: with an epoch, an id the store handed out and lost (rolled back); without, not this stream's.
    expect(unrecoverable({ id: "200-0", epoch: "e1" }, read)).toEqual({ missed: 0, reason: "reset" });
    expect(unrecoverable({ id: "200-0", epoch: "e0" }, read)).toEqual({ missed: 0, reason: "reset" });
    expect(unrecoverable({ id: "200-0", epoch: "" }, read)).toEqual({ missed: 0, reason: "invalid" });
    // The whole stream gone (no meta): any position with an epoch was lost with it.
    const gone = { last: "0-0", epoch: "", maxDeleted: "0-0", length: 0, entries: [] };
    expect(unrecoverable({ id: "60-0", epoch: "e1" }, gone)).toEqual({ missed: 0, reason: "reset" });
  });
});
