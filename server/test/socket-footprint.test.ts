import { ErrorCode } from "@tether/shared";
import type { TestClient } from "@tether/testkit/client";
import { connectRaw, post } from "@tether/testkit/http";
import { waitFor } from "@tether/testkit/wait";
import { Socket } from "socket.io";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tether } from "../src/index.js";
import { assertRunDispatch } from "../src/realtime/guards.js";
import { assertSocketFactory, GATE_SLOT } from "../src/realtime/socket-class.js";
import type { TetherSocket } from "../src/realtime/types.js";
import { embeddedTether } from "./fixtures/in-process.js";
import { API_KEY, serveTether, tab } from "./security/rooms-host.js";

const MAX_SOCKETS = 8;
const sockets = new Map<string, TetherSocket>();
let tether: Tether;
let close: (() => Promise<void>) | undefined;
let url: string;
const opened: TestClient[] = [];

beforeAll(async () => {
  tether = await embeddedTether(
    API_KEY,
    {
      // Keeps the server's socket object for the test to look at; registers no listener.
      onConnect: (_identity, socket) => {
        sockets.set(socket.id, socket);
      },
    },
    // The bound the last test works at: a leaked slot would refuse its last sockets.
    { TETHER_MAX_SOCKETS: String(MAX_SOCKETS) },
  );
  ({ url, close } = await serveTether(tether));
});
afterAll(async () => {
  for (const t of opened) t.client.close();
  await close?.();
});

/** The server's socket of a client, once its connect hook ran. */
async function serverSocket(id: string | undefined): Promise<TetherSocket> {
  await waitFor("the connect hook", () => id !== undefined && sockets.has(id));
  return sockets.get(id ?? "") as TetherSocket;
}

describe("per-socket state of an idle socket", () => {
  it("one shared disconnect listener, none for Tether's events, no spent credential kept", async () => {
    const [alice, bob] = [await tab(url, "alice", opened), await tab(url, "bob", opened)];
    const [a, b] = [await serverSocket(alice.client.socket.id), await serverSocket(bob.client.socket.id)];
    // Socket.IO's own `error` no-op, and Tether's one `disconnect` listener: nothing else.
    expect(a.eventNames().sort()).toEqual(["disconnect", "error"]);
    expect(a.listenerCount("error")).toBe(1);
    expect(a.listenerCount("disconnect")).toBe(1);
    // The same function for every socket: no closure per socket.
    expect(a.listeners("disconnect")[0]).toBe(b.listeners("disconnect")[0]);
    // What the client sent was read by the handshake and not kept: one shared empty object.
    expect(a.handshake.auth).toEqual({});
    expect(a.handshake.auth).toBe(b.handshake.auth);
  });

  it("keeps none of Tether's handshake fields once admitted, and every field of the app's own", async () => {
    const res = await post(`${url}/api/auth/login`, { apiKey: API_KEY, user: "jane" });
    const cookie = res.headers.get("set-cookie")?.split(";")[0] ?? "";
    const sent = { cookie: true, offset: "0-0", rooms: {}, awayMs: 250, device: "tablet", flags: [1] };
    const client = await connectRaw(url, sent, { extraHeaders: { cookie } });
    const server = await serverSocket(client.id);
    expect(server.data.userId).toBe("jane");
    expect(server.handshake.auth).toEqual({ device: "tablet", flags: [1] });
    client.close();
  });

  it("keeps no session cookie on the handshake's request once admitted: the identity is socket.data", async () => {
    const res = await post(`${url}/api/auth/login`, { apiKey: API_KEY, user: "ivy" });
    const cookie = res.headers.get("set-cookie")?.split(";")[0] ?? "";
    expect(cookie).toMatch(/^tether\.sid=/);
    const client = await connectRaw(url, { cookie: true }, { extraHeaders: { cookie: `theme=dark; ${cookie}` } });
    const server = await serverSocket(client.id);
    expect(server.data.userId).toBe("ivy");
    expect(server.request.headers.cookie).toBeUndefined();
    expect(server.handshake.headers.cookie).toBeUndefined();
    expect(server.request.rawHeaders.join("\n")).not.toContain("tether.sid");
    // What is not a credential stays.
    expect(server.request.headers.host).toEqual(expect.any(String));
    client.close();
  });

  it("no middleware list or guard closure per socket: one guarded run for the instance", async () => {
    const [gina, hank] = [await tab(url, "gina", opened), await tab(url, "hank", opened)];
    const [a, b] = [await serverSocket(gina.client.socket.id), await serverSocket(hank.client.socket.id)];
    // Socket.IO's list of the socket's own middlewares stays the empty one it was made with.
    expect((a as unknown as { fns: unknown[] }).fns).toEqual([]);
    // One function for every socket of the instance, in place of Socket.IO's; its prototype untouched.
    const run = (s: TetherSocket) => (s as unknown as { run: unknown }).run;
    expect(run(a)).toBe(run(b));
    expect(run(a)).not.toBe((Socket.prototype as unknown as { run: unknown }).run);
    // On the class the namespace makes its sockets from: no own property added to a made socket
    // (each would cost it a property array); Socket.IO's own prototype untouched.
    expect(Object.hasOwn(a, "run")).toBe(false);
    expect(a).toBeInstanceOf(Socket);
    expect(Object.getPrototypeOf(a)).toBe(Object.getPrototypeOf(b));
    expect(Object.getPrototypeOf(Object.getPrototypeOf(a))).toBe(Socket.prototype);
    expect(Reflect.ownKeys(a)).toContain(GATE_SLOT);
    // The guard still sees every event: a built-in one is answered, an unknown one refused.
    expect(await gina.client.socket.timeout(5_000).emitWithAck("echo", 1)).toBe(1);
    const unknown = (await gina.client.socket.timeout(5_000).emitWithAck("no-such-event" as "echo", 1)) as {
      error?: { code: string };
    };
    expect(unknown.error?.code).toBe(ErrorCode.InvalidInput);
  });

  it("the installed Socket.IO still runs every inbound event through run (an upgrade that changed it fails here)", () => {
    expect(typeof assertRunDispatch()).toBe("function");
    // What it refuses: a dispatch that no longer goes through run, or no run at all.
    class Moved {
      run(_event: unknown[], _fn: () => void) {}
      dispatch(event: unknown[]) {
        return this.middlewares(event);
      }
      middlewares(_event: unknown[]) {}
    }
    expect(() => assertRunDispatch(Moved.prototype)).toThrow(/no longer calls this\.run/);
    expect(() => assertRunDispatch({ dispatch() {} })).toThrow(/no run\(event, fn\)/);
  });

  it("the installed Socket.IO still makes a namespace's sockets in _createSocket (an upgrade that changed it fails here)", () => {
    expect(() => assertSocketFactory({})).not.toThrow();
    // What it refuses: sockets made elsewhere, or a server that restores Socket.IO's own sessions.
    expect(() => assertSocketFactory({}, { _createSocket: async () => ({}) })).toThrow(/_createSocket/);
    expect(() => assertSocketFactory({ server: { opts: { connectionStateRecovery: {} } } })).toThrow(
      /connectionStateRecovery/,
    );
  });

  it("Tether's events still answer through the guard; hostile ones are refused and a bystander keeps its socket", async () => {
    const [carol, dave] = [await tab(url, "carol", opened), await tab(url, "dave", opened)];
    const socket = carol.client.socket;
    expect(await socket.timeout(5_000).emitWithAck("echo", { deep: { a: [1, 2] } })).toEqual({ deep: { a: [1, 2] } });
    const history = (await socket.timeout(5_000).emitWithAck("history", {})) as { ok: boolean };
    expect(history.ok).toBe(true);
    const members = (await socket.timeout(5_000).emitWithAck("room:members", { room: "nowhere" })) as {
      error?: { code: string };
    };
    expect(members.error?.code).toBe(ErrorCode.Forbidden);
    // Wrong-typed, long and deep arguments for built-in events: refused with INVALID_INPUT, never run.
    let deep: unknown = 1;
    for (let i = 0; i < 200; i++) deep = [deep];
    for (const bad of [{ room: 42 }, { room: "x".repeat(10_000) }, deep, "not an object"]) {
      const reply = (await socket.timeout(5_000).emitWithAck("room:join", bad as { room: string })) as {
        error?: { code: string };
      };
      expect(reply.error?.code).toBe(ErrorCode.InvalidInput);
    }
    expect(socket.connected).toBe(true);
    expect(await dave.client.socket.timeout(5_000).emitWithAck("echo", "still here")).toBe("still here");
  });

  it("sockets that leave give their slots back: after 20 connects and leaves the instance still fills to its cap", async () => {
    for (let i = 0; i < 20; i++) {
      const t = await tab(url, `erin${i}`, opened);
      const id = t.client.socket.id;
      t.client.close();
      await waitFor("the server saw it leave", () => sockets.get(id ?? "")?.connected === false);
    }
    // Four sockets are held by the tests above: four more reach the cap.
    const held = [...sockets.values()].filter((s) => s.connected).length;
    for (let i = held; i < MAX_SOCKETS; i++) {
      const t = await tab(url, `frank${i}`, opened);
      expect(t.client.socket.connected).toBe(true);
    }
  });
});
