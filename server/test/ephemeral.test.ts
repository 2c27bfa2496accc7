/**
 * Issue 22, ephemeral events and broadcast targets: `publish(…, { ephemeral: true })` stores
 * nothing and carries no offset; it goes to a room, a room but the sender's socket (from a
 * `handle()` handler), or everyone. Real redis-server, a host app on a real HTTP server,
 * real socket.io clients.
 */
import { ErrorCode } from "@tether/shared";
import type { TestClient } from "@tether/testkit/client";
import { post } from "@tether/testkit/http";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createPublisher, loadConfig } from "../src/index.js";
import { PUBLISH_KEY, type RoomsHost, startRoomsHost, tab } from "./security/rooms-host.js";

let redis: TestRedis;
let host: RoomsHost;
const opened: TestClient[] = [];
beforeAll(async () => {
  redis = await startRedis();
  host = await startRoomsHost({ REDIS_URL: redis.url }, { canJoin: { alice: ["*"], bob: ["*"] }, roomsOf: {} });
  // A typing indicator: to everyone in the room but the socket that typed.
  host.tether.handle("doc:typing", z.object({ room: z.string() }), ({ room }, { userId, socketId }) =>
    host.tether.publisher.publish({ room, except: socketId }, "doc:typing", { userId }, { ephemeral: true }),
  );
});
afterAll(async () => {
  for (const t of opened) t.client.close();
  await host?.close();
  await redis?.close();
});

describe("ephemeral events", () => {
  it("to a room: delivered with `room` and without an offset, and never stored", async () => {
    const alice = await tab(host.url, "alice", opened);
    const bob = await tab(host.url, "bob", opened);
    for (const t of [alice, bob]) expect((await t.rawJoin("eph-1")).ok).toBe(true);
    const sent = await host.tether.publisher.publish({ room: "eph-1" }, "cursor:move", { x: 3 }, { ephemeral: true });
    expect(sent).toBeUndefined();
    for (const t of [alice, bob]) await waitFor("the cursor", () => t.of("cursor:move", "eph-1").length === 1);
    expect(bob.of("cursor:move", "eph-1")[0]).toEqual({ x: 3, room: "eph-1" });
    expect((await host.tether.history({ room: "eph-1" })).events).toEqual([]);
  });

  it("to a room but the sender, from a handle() handler: the sender's other tab hears it, the sender does not", async () => {
    const alice = await tab(host.url, "alice", opened);
    const aliceOther = await tab(host.url, "alice", opened);
    const bob = await tab(host.url, "bob", opened);
    for (const t of [alice, aliceOther, bob]) expect((await t.rawJoin("eph-2")).ok).toBe(true);
    const socket = alice.client.socket as unknown as Socket;
    const ack = await socket.timeout(5_000).emitWithAck("doc:typing", { room: "eph-2" });
    expect(ack).toMatchObject({ ok: true });
    for (const t of [aliceOther, bob])
      await waitFor("the typing event", () => t.of("doc:typing", "eph-2").length === 1);
    expect(bob.of("doc:typing", "eph-2")[0]).toEqual({ userId: "alice", room: "eph-2" });
    // Sent after it to the whole room (alice included), on the same path: once alice has it, the first one would have come before.
    await host.tether.publisher.publish({ room: "eph-2" }, "doc:marker", {}, { ephemeral: true });
    await waitFor("the marker at the sender", () => alice.of("doc:marker", "eph-2").length === 1);
    expect(alice.of("doc:typing", "eph-2")).toEqual([]);
  });

  it("to everyone: every connected socket, in a room or not", async () => {
    const alice = await tab(host.url, "alice", opened);
    const bob = await tab(host.url, "bob", opened);
    await host.tether.publisher.publish({ everyone: true }, "site:notice", { text: "deploying" }, { ephemeral: true });
    for (const t of [alice, bob]) await waitFor("the notice", () => t.of("site:notice").length === 1);
    expect(alice.of("site:notice")[0]).toEqual({ text: "deploying" });
  });

  it("over HTTP: POST /api/publish with ephemeral: true answers 202 without an offset; everyone/except only for ephemeral", async () => {
    const bob = await tab(host.url, "bob", opened);
    expect((await bob.rawJoin("eph-http")).ok).toBe(true);
    const auth = { authorization: `Bearer ${PUBLISH_KEY}` };
    const sent = await post(
      `${host.url}/api/publish`,
      { target: { room: "eph-http" }, event: "cursor:move", data: { x: 1 }, ephemeral: true },
      auth,
    );
    expect(sent).toMatchObject({ status: 202, body: {} });
    await waitFor("the cursor over HTTP", () => bob.of("cursor:move", "eph-http").length === 1);
    expect(bob.of("cursor:move", "eph-http")[0]).toEqual({ x: 1, room: "eph-http" });
    for (const body of [
      { target: { everyone: true }, event: "x:y", data: {} },
      { target: { room: "eph-http", except: "s" }, event: "x:y", data: {} },
      { target: { everyone: false }, event: "x:y", data: {}, ephemeral: true },
      { target: { room: "eph-http" }, event: "x:y", data: {}, ephemeral: "yes" },
    ]) {
      const res = await post(`${host.url}/api/publish`, body, auth);
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
      expect(res.body).toMatchObject({ error: { code: ErrorCode.InvalidInput } });
    }
    expect((await host.tether.history({ room: "eph-http" })).events).toEqual([]);
  });

  it("refused: a bad target for an ephemeral event, everyone or except for a stored one, any from a worker", async () => {
    const { publisher } = host.tether;
    for (const target of [{ user: "" }, { room: "" }, { room: "r", except: 5 }, { everyone: false }, {}]) {
      await expect(publisher.publish(target as never, "x:y", {}, { ephemeral: true })).rejects.toMatchObject({
        code: ErrorCode.InvalidInput,
      });
    }
    for (const target of [{ everyone: true }, { room: "r", except: "s" }])
      await expect(publisher.publish(target as never, "x:y", {})).rejects.toMatchObject({
        code: ErrorCode.InvalidInput,
      });
    // The same data rules as a stored event.
    await expect(publisher.publish({ room: "r" }, "x:y", { offset: 1 }, { ephemeral: true })).rejects.toMatchObject({
      code: ErrorCode.InvalidInput,
    });
    const worker = await createPublisher(loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent" }));
    try {
      await expect(worker.publish({ room: "r" }, "x:y", {}, { ephemeral: true })).rejects.toMatchObject({
        code: ErrorCode.InvalidInput,
      });
    } finally {
      await worker.close();
    }
  });
});
