import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { TetherClientError } from "@tether/client";
import { ErrorCode, type PresencePayload } from "@tether/shared";
import { startClient, type TestClient } from "@tether/testkit/client";
import { post } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTether, loadConfig, type Tether } from "../src/index.js";

const HOST = resolve(import.meta.dirname, "rooms/host.ts");
const API_KEY = "rooms-api-key-0123456789";
const PUBLISH_KEY = "rooms-publish-key-0123456789";
/** The liveness interval: presence entries live this long unless renewed. */
const INTERVAL_MS = 1_000;

interface Received {
  event: string;
  payload: Record<string, unknown>;
}

/** A user's tab: logged in as `user` on `url`, connected, recording everything it receives. */
async function tab(url: string, user: string, opened: TestClient[]) {
  const t = startClient(url);
  opened.push(t);
  const res = await t.post("/api/auth/login", { apiKey: API_KEY, user });
  if (res.status !== 200) throw new Error(`login as ${user} failed: ${res.status}`);
  const received: Received[] = [];
  t.client.socket.onAny((event: string, payload: Record<string, unknown>) => received.push({ event, payload }));
  t.client.connect();
  await t.welcomed(1);
  /** The payloads of `event` (for room `room`, when given) received so far. */
  const of = (event: string, room?: string) =>
    received.filter((r) => r.event === event && (room === undefined || r.payload.room === room)).map((r) => r.payload);
  return { ...t, received, of };
}

async function publish(url: string, room: string, event: string, data: object): Promise<string> {
  const res = await post(
    `${url}/api/publish`,
    { target: { room }, event, data },
    { authorization: `Bearer ${PUBLISH_KEY}` },
  );
  if (res.status !== 202) throw new Error(`publish failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body?.offset as string;
}

const users = (members: { userId: string; connections: number }[]) =>
  Object.fromEntries(members.map((m) => [m.userId, m.connections]));

function suite(name: string, backend: () => Record<string, string>, instances: 1 | 2) {
  describe(name, () => {
    let redisEnv: Record<string, string>;
    let a: TestInstance;
    let b: TestInstance;
    const opened: TestClient[] = [];
    const policyFile = join(tmpdir(), `tether-rooms-policy-${process.pid}-${instances}.json`);
    const setPolicy = (policy: Record<string, string[]>) => writeFileSync(policyFile, JSON.stringify(policy));

    beforeAll(async () => {
      setPolicy({ alice: ["*"], bob: ["doc:1", "lobby"], dave: ["doc:2", "doc:3"], erin: ["*"], frank: ["*"] });
      redisEnv = backend();
      const env = {
        ...redisEnv,
        TETHER_API_KEY: API_KEY,
        TETHER_PUBLISH_KEY: PUBLISH_KEY,
        TETHER_SESSION_CHECK_INTERVAL: `${INTERVAL_MS}ms`,
        ROOMS_POLICY: policyFile,
      };
      a = await startInstance(env, { main: HOST });
      b = instances === 2 ? await startInstance(env, { main: HOST }) : a;
    });
    afterAll(async () => {
      for (const t of opened) t.client.close();
      await Promise.all([a?.kill(), b?.kill()]);
    });

    it("a room joined late (on the other instance) recovers its history from an offset: the ack carries the recovery", async () => {
      const first = await publish(a.url, "doc:1", "doc:edit", { n: 1 });
      await publish(a.url, "doc:1", "doc:edit", { n: 2 });
      await publish(a.url, "doc:1", "doc:edit", { n: 3 });
      const bob = await tab(b.url, "bob", opened);
      const joined = await bob.client.join("doc:1", { offset: first });
      expect(joined.recovery).toEqual({ recovered: true, missed: 2, room: "doc:1" });
      // Replayed before the ack, in order, each with its room and offset.
      expect(bob.of("doc:edit", "doc:1").map((p) => p.n)).toEqual([2, 3]);
      expect(bob.of("recovery", "doc:1")).toEqual([joined.recovery]);
      expect(users(joined.members)).toEqual({ bob: 1 });
      // Then live ones, from any instance's publish.
      await publish(a.url, "doc:1", "doc:edit", { n: 4 });
      await waitFor("the live event", () => bob.of("doc:edit", "doc:1").length === 3);
      expect(bob.client.roomOffsets["doc:1"]).toBe(bob.of("doc:edit", "doc:1").at(-1)?.offset);
    });

    it("a fresh join starts from now; a refused join is a typed error (FORBIDDEN, not retryable)", async () => {
      await publish(a.url, "lobby", "chat", { text: "before" });
      const bob = await tab(a.url, "bob", opened);
      const joined = await bob.client.join("lobby");
      expect(joined.recovery).toEqual({ recovered: true, missed: 0, room: "lobby" });
      expect(bob.of("chat")).toEqual([]);
      const refused = await bob.client.join("doc:secret").then(
        () => undefined,
        (err: TetherClientError) => err,
      );
      expect(refused?.code).toBe(ErrorCode.Forbidden);
      expect(refused?.retryable).toBe(false);
      // Not in the room: no events, no members.
      await expect(bob.client.members("doc:secret")).rejects.toMatchObject({ code: ErrorCode.Forbidden });
      // Bad input never reaches the handler: the inbound guard refuses it.
      const bad = await bob.client.socket.timeout(5_000).emitWithAck("room:join", { room: "" } as never);
      expect((bad as { error?: { code?: string } }).error?.code).toBe(ErrorCode.InvalidInput);
    });

    it("leave stops the room's events at once, and tells the others", async () => {
      const alice = await tab(a.url, "alice", opened);
      const bob = await tab(b.url, "bob", opened);
      const witness = await tab(b.url, "frank", opened);
      await alice.client.join("doc:leave");
      await witness.client.join("doc:leave");
      setPolicy({
        alice: ["*"],
        bob: ["doc:1", "lobby", "doc:leave"],
        dave: ["doc:2", "doc:3"],
        erin: ["*"],
        frank: ["*"],
      });
      await bob.client.join("doc:leave");
      await waitFor("bob's presence:join", () => alice.of("presence:join", "doc:leave").some((p) => p.user === "bob"));
      await bob.client.leave("doc:leave");
      expect(bob.client.roomOffsets["doc:leave"]).toBeUndefined();
      await waitFor("bob's presence:leave", () =>
        alice.of("presence:leave", "doc:leave").some((p) => p.user === "bob"),
      );
      await publish(a.url, "doc:leave", "doc:edit", { n: 1 });
      // The witness is on bob's instance: the same fan-out would have reached bob first; an echo orders bob's socket.
      await waitFor("the witness's event", () => witness.of("doc:edit", "doc:leave").length === 1);
      await bob.client.echo("sync");
      expect(bob.of("doc:edit", "doc:leave")).toEqual([]);
      expect(users(await alice.client.members("doc:leave"))).toEqual({ alice: 1, frank: 1 });
    });

    it("a reconnect re-joins the remembered rooms from their offsets, and checks canJoin again", async () => {
      const dave = await tab(a.url, "dave", opened);
      await dave.client.join("doc:2");
      await dave.client.join("doc:3");
      await publish(a.url, "doc:2", "doc:edit", { n: 1 });
      await waitFor("the first event", () => dave.of("doc:edit", "doc:2").length === 1);
      dave.client.disconnect();
      await publish(b.url, "doc:2", "doc:edit", { n: 2 });
      await publish(b.url, "doc:2", "doc:edit", { n: 3 });
      await publish(b.url, "doc:3", "doc:edit", { n: 1 });
      setPolicy({ alice: ["*"], bob: ["doc:1", "lobby"], dave: ["doc:2"], erin: ["*"], frank: ["*"] });
      dave.client.connect();
      await waitFor("doc:2's recovery", () => dave.of("recovery", "doc:2").length === 1);
      expect(dave.of("recovery", "doc:2")).toEqual([{ recovered: true, missed: 2, room: "doc:2" }]);
      expect(dave.of("doc:edit", "doc:2").map((p) => p.n)).toEqual([1, 2, 3]);
      await waitFor("doc:3 revoked", () => dave.of("room:revoked").length === 1);
      expect(dave.of("room:revoked")).toEqual([{ room: "doc:3" }]);
      expect(dave.of("doc:edit", "doc:3")).toEqual([]);
      expect(Object.keys(dave.client.roomOffsets)).toEqual(["doc:2"]);
      await publish(a.url, "doc:2", "doc:edit", { n: 4 });
      await waitFor("live again", () => dave.of("doc:edit", "doc:2").length === 4);
    });

    it("presence: a member is a user with a connection count; join and leave at the first and last connection", async () => {
      const erin = await tab(a.url, "erin", opened);
      const frank = await tab(b.url, "frank", opened);
      await erin.client.join("team:p");
      const joined = await frank.client.join("team:p");
      expect(users(joined.members)).toEqual({ erin: 1, frank: 1 });
      await waitFor("frank's presence:join", () => erin.of("presence:join", "team:p").some((p) => p.user === "frank"));
      const frank2 = await tab(a.url, "frank", opened);
      await frank2.client.join("team:p");
      expect(users(await erin.client.members("team:p"))).toEqual({ erin: 1, frank: 2 });
      await frank.client.leave("team:p");
      expect(users(await erin.client.members("team:p"))).toEqual({ erin: 1, frank: 1 });
      frank2.client.close();
      await waitFor("frank's presence:leave", () => erin.of("presence:leave", "team:p").length === 1);
      const joins = erin.of("presence:join", "team:p") as unknown as PresencePayload[];
      expect(joins.filter((p) => p.user === "frank")).toHaveLength(1);
      expect(erin.of("presence:leave", "team:p")).toEqual([{ room: "team:p", userId: "frank", user: "frank" }]);
      expect(users(await erin.client.members("team:p"))).toEqual({ erin: 1 });
    });

    if (instances === 2) {
      it("an instance killed: its members are gone from members(room) within one interval, and the others get presence:leave", async () => {
        const heidi = await tab(a.url, "alice", opened);
        const grace = await tab(b.url, "erin", opened);
        await heidi.client.join("team:k");
        await grace.client.join("team:k");
        expect(users(await heidi.client.members("team:k"))).toEqual({ alice: 1, erin: 1 });
        await b.kill();
        grace.client.close();
        await waitFor("erin gone from members", async () => !("erin" in users(await heidi.client.members("team:k"))), {
          timeoutMs: INTERVAL_MS + 500,
        });
        await waitFor("presence:leave for erin", () =>
          heidi.of("presence:leave", "team:k").some((p) => p.user === "erin"),
        );
        expect(users(await heidi.client.members("team:k"))).toEqual({ alice: 1 });
      });
    }
  });
}

let redis: TestRedis | undefined;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => redis?.close());

suite("runtime rooms and presence, two instances, real Redis", () => ({ REDIS_URL: redis?.url ?? "" }), 2);
suite("runtime rooms and presence, embedded (in-process twin)", () => ({ REDIS_URL: "" }), 1);

describe("the default canJoin", () => {
  let server: TestInstance;
  beforeAll(async () => {
    server = await startInstance({ REDIS_URL: "", TETHER_API_KEY: API_KEY });
  });
  afterAll(async () => server?.kill());

  it("refuses every runtime join (rooms are private unless the host says)", async () => {
    const t = startClient(server.url);
    await t.client.login(API_KEY);
    t.client.connect();
    await t.welcomed(1);
    await expect(t.client.join("anything")).rejects.toMatchObject({ code: ErrorCode.Forbidden });
    t.client.close();
  });
});

describe("tether.members(room) in a host app (embedded store)", () => {
  let tether: Tether;
  let http: Server;
  let url: string;
  beforeAll(async () => {
    tether = await createTether({
      config: loadConfig({ REDIS_URL: "", LOG_LEVEL: "silent", TETHER_API_KEY: API_KEY }),
      canJoin: (_, room) => room.startsWith("open:"),
    });
    const app = express();
    app.use(tether.router);
    http = createServer(app);
    tether.attach(http);
    await new Promise<void>((done) => http.listen(0, "127.0.0.1", done));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await tether?.close();
    http?.close();
  });

  it("answers from the server what client.members answers", async () => {
    const t = startClient(url);
    await t.client.login(API_KEY);
    t.client.connect();
    await t.welcomed(1);
    await t.client.join("open:x");
    expect(await tether.members("open:x")).toEqual([{ userId: "admin", connections: 1 }]);
    expect(await t.client.members("open:x")).toEqual(await tether.members("open:x"));
    t.client.close();
    await waitFor("admin gone", async () => (await tether.members("open:x")).length === 0);
  });
});
