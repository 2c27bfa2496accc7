import type { TestClient } from "@tether/testkit/client";
import { waitFor } from "@tether/testkit/wait";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConnectionIdentity, Tether } from "../src/index.js";
import { embeddedTether } from "./fixtures/in-process.js";
import { API_KEY, serveTether, tab } from "./security/rooms-host.js";

const connects: { identity: ConnectionIdentity; socketId: string }[] = [];
const disconnects: { identity: ConnectionIdentity; reason: string }[] = [];
const logged: { msg: string }[] = [];
let tether: Tether;
let close: (() => Promise<void>) | undefined;
let url: string;
const opened: TestClient[] = [];

beforeAll(async () => {
  tether = await embeddedTether(API_KEY, {
    logger: pino({ level: "error" }, { write: (line: string) => void logged.push(JSON.parse(line)) }),
    onConnect: async (identity, socket) => {
      connects.push({ identity, socketId: socket.id });
      if (identity.userId === "thrower") throw new Error("the host's bug");
      if (identity.userId === "rejecter") await Promise.reject(new Error("the host's async bug"));
    },
    onDisconnect: (identity, reason) => {
      disconnects.push({ identity, reason });
    },
  });
  ({ url, close } = await serveTether(tether));
});
afterAll(async () => {
  for (const t of opened) t.client.close();
  await close?.();
});

describe("server hooks", () => {
  it("onConnect gets the user, the socket's id and the instance (no session id) and the socket; onDisconnect the reason", async () => {
    const alice = await tab(url, "alice", opened);
    const socketId = alice.client.socket.id;
    await waitFor("the connect hook", () => connects.some((c) => c.socketId === socketId));
    const connect = connects.find((c) => c.socketId === socketId);
    expect(connect?.identity).toEqual({ userId: "alice", socketId, instance: expect.any(String) });
    expect(Object.keys(connect?.identity ?? {}).sort()).toEqual(["instance", "socketId", "userId"]);
    alice.client.close();
    await waitFor("the disconnect hook", () => disconnects.some((d) => d.identity.socketId === socketId));
    expect(disconnects.find((d) => d.identity.socketId === socketId)).toEqual({
      identity: connect?.identity,
      reason: expect.stringMatching(/client namespace disconnect|transport close/),
    });
  });

  it("a hook that throws or rejects is logged; the socket keeps working", async () => {
    for (const user of ["thrower", "rejecter"]) {
      const t = await tab(url, user, opened);
      expect(await t.client.socket.timeout(5_000).emitWithAck("echo", { still: "here" })).toEqual({ still: "here" });
      expect(t.client.socket.connected).toBe(true);
    }
    await waitFor("both failures logged", () => logged.filter((l) => /onConnect hook failed/.test(l.msg)).length >= 2);
  });
});
