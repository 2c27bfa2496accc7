/**
 * Redis round trips per connect, counted honestly: connects one at a time from
 * this process, and reads Redis's `total_reads_processed` (read events on client
 * connections; one round trip is one read, a pipeline that arrives in one read
 * counts once) and `INFO commandstats` before and after each phase: the token
 * request (Tether), then the handshake up to `welcome` plus 50 ms for any work
 * that trails it. Medians over the connects; the INFO calls themselves are taken off.
 */
import { Agent, request } from "node:http";
import { io } from "socket.io-client";
import { addressOf, type Bench, ensureLogins, quantile } from "./context.js";
import type { Instance } from "./instances.js";
import { delta, type RedisCounters, RedisProbe } from "./redis.js";

export interface RoundTrips {
  label: string;
  tokenReads: number | undefined;
  tokenCommands: number | undefined;
  handshakeReads: number | undefined;
  handshakeCommands: number | undefined;
  /** Commands of one handshake, by name (from the median connect's neighbourhood: the last one). */
  handshakeByCommand: Record<string, number>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Users of the round-trip probe: their own range, past the ramp's. */
const PROBE_USERS_FROM = 20_000;

function tokenFrom(url: string, cookie: string, agent: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const target = new URL(`${url}/api/auth/ws-token`);
    const req = request(
      { host: target.hostname, port: target.port, path: target.pathname, method: "POST", agent, headers: { cookie } },
      (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => {
          text += chunk.toString();
        });
        res.on("end", () =>
          res.statusCode === 200 ? resolve((JSON.parse(text) as { token: string }).token) : reject(new Error(text)),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

export async function measureRoundTrips(
  bench: Bench,
  instance: Instance,
  label: string,
  connects: number,
): Promise<RoundTrips> {
  const system = instance.system;
  if (system === "bare") throw new Error("round trips: bare Socket.IO has no Redis");
  const redis = bench.redis[system];
  const probe = new RedisProbe(redis.url);
  const tokenReads: number[] = [];
  const tokenCommands: number[] = [];
  const handshakeReads: number[] = [];
  const handshakeCommands: number[] = [];
  let handshakeByCommand: Record<string, number> = {};
  // Users of their own, logged in through the worker like the rest (their own addresses).
  await ensureLogins(bench, system, instance.url, PROBE_USERS_FROM + connects, PROBE_USERS_FROM);
  try {
    for (let i = 0; i < connects; i++) {
      const user = PROBE_USERS_FROM + i;
      const cookie = bench.cookies[system][user] ?? "";
      const address = addressOf(user);
      const agent = new Agent({ keepAlive: true, localAddress: address });
      let auth: Record<string, string> = {};
      let before: RedisCounters = await probe.counters();
      if (system === "tether") {
        auth = { token: await tokenFrom(instance.url, cookie, agent) };
        await sleep(20);
        const after = await probe.counters();
        const d = delta(before, after);
        tokenReads.push(d.reads);
        tokenCommands.push(d.commands);
        before = await probe.counters();
      }
      const socket = io(instance.url, {
        transports: ["websocket"],
        reconnection: false,
        forceNew: true,
        auth,
        ...{ localAddress: address },
        ...(system === "plain" ? { extraHeaders: { cookie } } : {}),
      });
      await new Promise<void>((resolve, reject) => {
        socket.once("welcome", () => resolve());
        socket.once("connect_error", reject);
      });
      await sleep(50);
      const d = delta(before, await probe.counters());
      handshakeReads.push(d.reads);
      handshakeCommands.push(d.commands);
      handshakeByCommand = d.byCommand;
      socket.close();
      agent.destroy();
      await sleep(50);
    }
  } finally {
    probe.close();
  }
  const med = (values: number[]) => quantile(values, 0.5);
  return {
    label,
    tokenReads: med(tokenReads),
    tokenCommands: med(tokenCommands),
    handshakeReads: med(handshakeReads),
    handshakeCommands: med(handshakeCommands),
    handshakeByCommand,
  };
}
