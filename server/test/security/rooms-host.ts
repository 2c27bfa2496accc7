/**
 * The room security suites' host app: createTether in this process on a real
 * HTTP server (port 0), a login that takes the API key plus a user name, and a
 * `canJoin` / `roomsOf` read from a policy object the test changes at will.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { startClient, type TestClient } from "@tether/testkit/client";
import { apiKeyAndUserLogin } from "@tether/testkit/host-process";
import { post } from "@tether/testkit/http";
import express from "express";
import { createTether, loadConfig, type Tether } from "../../src/index.js";

export const API_KEY = "room-security-api-key-0123456789";
export const PUBLISH_KEY = "room-security-publish-key-0123456789";

/** Who may join what: user → rooms (`*`: any) for `canJoin`, user → rooms for `roomsOf`. */
export interface Policy {
  canJoin: Record<string, string[]>;
  roomsOf: Record<string, string[]>;
}

export interface RoomsHost {
  readonly url: string;
  readonly tether: Tether;
  close(): Promise<void>;
}

export async function startRoomsHost(env: Record<string, string>, policy: Policy): Promise<RoomsHost> {
  const config = loadConfig({
    LOG_LEVEL: "silent",
    TETHER_API_KEY: API_KEY,
    TETHER_PUBLISH_KEY: PUBLISH_KEY,
    TETHER_SESSION_SECRET: "room-security-session-secret-0123456789",
    // Admission is not the subject: a loaded CI box's event-loop delay must not refuse a raw (non-retrying) handshake.
    TETHER_ADMISSION_MAX_EVENT_LOOP_DELAY: "off",
    ...env,
  });
  const tether = await createTether({
    config,
    login: apiKeyAndUserLogin(config),
    roomsOf: ({ userId }) => policy.roomsOf[userId] ?? [],
    canJoin: ({ userId }, room) => {
      const rooms = policy.canJoin[userId] ?? [];
      return rooms.includes("*") || rooms.includes(room);
    },
  });
  const app = express();
  // A host's own token route (its users signed in by the host): `?user=…&key=…` (the host session's key).
  app.get("/my/tether-token", async (req, res) => {
    const userId = String(req.query.user);
    const sessionKey = String(req.query.key);
    res.json(await tether.issueTokenFor(req, { userId, sessionKey, expiresAt: Date.now() + 3_600_000 }));
  });
  return { ...(await serveTether(tether, app)), tether };
}

/**
 * Serves a Tether made in this process: its router on `app` (after the app's own routes),
 * Socket.IO attached, a real HTTP server on 127.0.0.1 (port 0). `close` ends both.
 */
export async function serveTether(tether: Tether, app = express()): Promise<{ url: string; close(): Promise<void> }> {
  app.use(tether.router);
  const http: Server = createServer(app);
  tether.attach(http);
  await new Promise<void>((done) => http.listen(0, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    async close() {
      await tether.close();
      await new Promise<void>((done) => http.close(() => done()));
    },
  };
}

export interface Received {
  event: string;
  payload: Record<string, unknown>;
}

/**
 * A tab logged in as `user` (a session of its own; with `hostSessionKey`, a host-issued
 * session through the host's token route), connected, recording every event at the raw Socket.IO level.
 */
export async function tab(url: string, user: string, opened: TestClient[], hostSessionKey?: string) {
  const getToken =
    hostSessionKey === undefined
      ? undefined
      : async () => {
          const res = await fetch(`${url}/my/tether-token?user=${user}&key=${hostSessionKey}`);
          if (!res.ok) throw new Error(`token route: ${res.status}`);
          return (await res.json()) as { token: string; expiresAt: number };
        };
  const t = startClient(url, { getToken });
  opened.push(t);
  if (hostSessionKey === undefined) {
    const res = await t.post("/api/auth/login", { apiKey: API_KEY, user });
    if (res.status !== 200) throw new Error(`login as ${user} failed: ${res.status}`);
  }
  const received: Received[] = [];
  t.client.socket.onAny((event: string, payload: Record<string, unknown>) => received.push({ event, payload }));
  t.client.connect();
  await t.welcomed(1);
  /** The payloads of `event` (for room `room`, when given) received so far. */
  const of = (event: string, room?: string) =>
    received.filter((r) => r.event === event && (room === undefined || r.payload.room === room)).map((r) => r.payload);
  /** A raw `room:join` (the ack as the server sent it, refusals included). */
  const rawJoin = (room: string) =>
    t.client.socket.timeout(5_000).emitWithAck("room:join", { room }) as Promise<Record<string, unknown>>;
  const rawMembers = (room: string) =>
    t.client.socket.timeout(5_000).emitWithAck("room:members", { room }) as Promise<Record<string, unknown>>;
  return { ...t, received, of, rawJoin, rawMembers };
}

export async function publish(url: string, room: string, event: string, data: object): Promise<string> {
  const res = await post(
    `${url}/api/publish`,
    { target: { room }, event, data },
    { authorization: `Bearer ${PUBLISH_KEY}` },
  );
  if (res.status !== 202) throw new Error(`publish failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body?.offset as string;
}

export const users = (members: { userId: string; connections: number }[]) =>
  Object.fromEntries(members.map((m) => [m.userId, m.connections]));
