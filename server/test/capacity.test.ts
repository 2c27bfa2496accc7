import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { ClientEvent, ErrorCode } from "@tether/shared";
import { fetchFrom, nextClientAddress } from "@tether/testkit/address";
import { agentSays } from "@tether/testkit/agent";
import { connectRaw, HandshakeRefused, login, wsToken } from "@tether/testkit/http";
import { LOG_DIR, startInstance, type TestInstance } from "@tether/testkit/instance";
import { freePort } from "@tether/testkit/ports";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FD_RESERVE } from "../src/env/capacity.js";
import { connectionCeiling } from "../src/http/connection-gate.js";

const API_KEY = "capacity-test-api-key-0123456789abcdef";
const MAX_SOCKETS = 3;

/** The refusal a handshake got (`retryBusy: false`: the refusal itself is the subject). */
async function handshakeRefusal(url: string, token: string) {
  const err = await connectRaw(url, { token }, { retryBusy: false }).then(
    (socket) => {
      socket.close();
      return new Error("the handshake was accepted");
    },
    (e: unknown) => e,
  );
  if (!(err instanceof HandshakeRefused)) throw err;
  return err.data;
}

/** A gauge's value in an instance's /metrics text. */
async function gauge(url: string, line: RegExp): Promise<number> {
  const text = await (await fetchFrom(nextClientAddress())(`${url}/metrics`)).text();
  const value = line.exec(text)?.[1];
  if (value === undefined) throw new Error(`no ${line} in /metrics`);
  return Number(value);
}

/** A plain HTTP connection left open after one probe (keep-alive): it holds a descriptor. */
async function idleKeepAlive(port: number): Promise<Socket> {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => {});
  let answer = "";
  socket.on("data", (chunk: Buffer) => {
    answer += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  await waitFor("the probe's answer", () => answer.startsWith("HTTP/1.1 200"));
  return socket;
}

const loginFrom = (url: string) =>
  fetchFrom(nextClientAddress())(`${url}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ apiKey: API_KEY }),
  });

/**
 * Issue 21, item 1: an instance holds what its machine allows, says so when full (never a
 * silent close), and tells the load balancer to send new users elsewhere until it has room.
 */
describe("capacity: a full instance refuses with a hint and weighs 0", () => {
  let redis: TestRedis;
  const instances: TestInstance[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const instance of instances) await instance.kill();
    await redis?.close();
  });

  it(`at TETHER_MAX_SOCKETS (${MAX_SOCKETS}): UNAVAILABLE + retryAfterMs, agent 0%, token intact; back under it all recover`, async () => {
    const agentPort = await freePort();
    const instance = await startInstance({
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_MAX_SOCKETS: String(MAX_SOCKETS),
      TETHER_AGENT_PORT: String(agentPort),
      // The refused client's token is used again at the end: FAST_ENV's 2 s would expire it on a busy box.
      TETHER_WS_TOKEN_TTL: "60s",
    });
    instances.push(instance);
    const { url } = instance;
    expect(await gauge(url, /^tether_socket_capacity (\d+)$/m)).toBe(MAX_SOCKETS);
    const session = await login(url, API_KEY);
    const held = [];
    for (let i = 0; i < MAX_SOCKETS; i++) held.push(await connectRaw(url, { token: await wsToken(url, session) }));
    expect(await agentSays(agentPort)).toBe("up 0%");
    expect(await gauge(url, /^tether_capacity_full\{limit="sockets"\} (\d+)$/m)).toBe(1);

    // Hostile: a client hammering the full instance gets the same answer each time, and takes no slot.
    const token = await wsToken(url, session);
    for (let i = 0; i < 10; i++) {
      const data = await handshakeRefusal(url, token);
      expect(data).toMatchObject({ code: ErrorCode.Unavailable, retryable: true });
      expect(data?.retryAfterMs).toBeGreaterThanOrEqual(1_000);
    }
    // The sockets it holds are served meanwhile.
    for (const socket of held) expect(await socket.emitWithAck(ClientEvent.Echo, "still here")).toBe("still here");
    expect(await gauge(url, /^tether_admission_refusals_total\{reason="full"\} (\d+)$/m)).toBeGreaterThanOrEqual(10);

    // One leaves: the refused client's token (never spent) now connects, and the instance is full again.
    held.shift()?.close();
    await waitFor("the agent's weight back", async () => (await agentSays(agentPort)) === "up 100%");
    expect(await gauge(url, /^tether_capacity_full\{limit="sockets"\} (\d+)$/m)).toBe(0);
    held.push(await connectRaw(url, { token }, { retryBusy: false }));
    expect(await agentSays(agentPort)).toBe("up 0%");
    expect(await handshakeRefusal(url, await wsToken(url, session))).toMatchObject({ code: ErrorCode.Unavailable });
    for (const socket of held) socket.close();
    await waitFor("the agent's weight back", async () => (await agentSays(agentPort)) === "up 100%");
    expect((await connectRaw(url, { token: await wsToken(url, session) })).connected).toBe(true);
  });

  it("past the keep-alive HTTP cap: HTTP 503 + Retry-After, agent 0%, sockets and probes still served", async () => {
    const agentPort = await freePort();
    const instance = await startInstance({
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_HTTP_MAX_KEEP_ALIVE_CONNECTIONS: "8",
      TETHER_HTTP_KEEP_ALIVE_TIMEOUT: "60s",
      TETHER_AGENT_PORT: String(agentPort),
    });
    instances.push(instance);
    const { url, port } = instance;
    const session = await login(url, API_KEY);
    const token = await wsToken(url, session);
    // Bounded: the cap and a few more (the test's own pooled connections count too).
    const idle: Socket[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < 20 && refused === undefined; i++) {
      const res = await loginFrom(url);
      if (res.status === 503) refused = res;
      else idle.push(await idleKeepAlive(port));
    }
    expect(refused?.status).toBe(503);
    expect(Number(refused?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await refused?.json()).toEqual({ error: { code: ErrorCode.Unavailable, message: expect.any(String) } });
    expect(await agentSays(agentPort)).toBe("up 0%");
    expect(await gauge(url, /^tether_capacity_full\{limit="keep_alive"\} (\d+)$/m)).toBe(1);
    // Upgrades are not plain HTTP: a socket still connects (its own cap answers for it).
    const socket = await connectRaw(url, { token });
    expect(socket.connected).toBe(true);
    for (const path of ["/healthz", "/readyz"])
      expect((await fetchFrom(nextClientAddress())(`${url}${path}`)).status).toBe(200);

    for (const connection of idle) connection.destroy();
    await waitFor("HTTP served again", async () => (await loginFrom(url)).status === 200);
    await waitFor("the agent's weight back", async () => (await agentSays(agentPort)) === "up 100%");
    socket.close();
  });

  it("a small fd limit sets the caps, and the start log says why and how to raise it", async () => {
    const fdLimit = 400;
    const instance = await startInstance(
      { REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_INSTANCE_ID: `capacity-fd-${process.pid}` },
      { fdLimit },
    );
    instances.push(instance);
    const cap = await gauge(instance.url, /^tether_socket_capacity (\d+)$/m);
    expect(cap).toBeGreaterThan(100);
    expect(connectionCeiling(cap)).toBeLessThanOrEqual(fdLimit - FD_RESERVE);
    const log = readFileSync(join(LOG_DIR, `capacity-fd-${process.pid}.log`), "utf8");
    expect(log).toContain(`by file descriptors: fd limit ${fdLimit}`);
    expect(log).toMatch(/file-descriptor limit is 400.*ulimit -n/);
  });
});
