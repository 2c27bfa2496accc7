import type { SessionEndedPayload } from "@tether/shared";
import { connectRaw, login, type TestSession, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedisCluster, type TestRedisCluster } from "@tether/testkit/redis-cluster";
import { idleFor, nextEvent } from "@tether/testkit/wait";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sessionRoom } from "../src/auth/keys.js";
import { slotOf } from "../src/store/subscription-probe.js";
import { topicChannel } from "../src/store/topic-bus.js";

const API_KEY = "idle-cluster-test-api-key-0123456789";
const SESSIONS = 40;
const CHECK_INTERVAL_MS = 200;
const SWEEP_MS = 2_000;
/** Two sweeps: twenty rounds. */
const WINDOW_MS = 2 * SWEEP_MS;
/**
 * What an instance sends a Cluster whatever its sessions, per second, with room to spare: the
 * delivery probe (a SPUBLISH per shard per 5 s), the subscriber's slots refresh (every 5 s), the
 * other instance's share of both.
 */
const BACKGROUND_PER_SECOND = 15;
/** The last test's sessions whose end channel is on the shard it cuts, and elsewhere. */
const ON_M = 2;
const ELSEWHERE = 10;

/** The session id in a `tether.sid=s%3A<sid>.<signature>` cookie. */
const sidOf = (session: TestSession) =>
  decodeURIComponent(session.cookie.split("=")[1] ?? "")
    .slice(2)
    .split(".")[0];

/** Calls per command on one Redis (INFO commandstats). */
async function commandStats(node: Redis): Promise<Map<string, number>> {
  const text = await node.info("commandstats");
  return new Map([...text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1] ?? "", Number(m[2])]));
}

/** Calls per command on every master together, the INFO calls of this test left out. */
async function clusterStats(masters: Redis[]): Promise<Map<string, number>> {
  const total = new Map<string, number>();
  for (const stats of await Promise.all(masters.map(commandStats)))
    for (const [name, calls] of stats) if (name !== "info") total.set(name, (total.get(name) ?? 0) + calls);
  return total;
}

function difference(after: Map<string, number>, before: Map<string, number>): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [name, calls] of after) if (calls > (before.get(name) ?? 0)) delta[name] = calls - (before.get(name) ?? 0);
  return delta;
}

/**
 * Issue 21: idle costs next to nothing on a Redis Cluster too. There a session's existence
 * check is a command of its own (its key's slot is its own): each connected session is checked
 * once per sweep (TETHER_SESSION_SWEEP_INTERVAL), not every round; a session that vanished
 * silently is still ended within a sweep, and one whose end message was lost while the
 * session-end subscription was down is ended as soon as it is back.
 */
describe("idle sessions on a Redis Cluster: checked once per sweep, a lost end found at once", () => {
  let cluster: TestRedisCluster;
  let masters: Redis[];
  /** Short rounds and a short sweep. */
  let a: TestInstance;
  /** Rounds of 5 minutes, the default sweep: within a test it checks a session only when told to. */
  let slow: TestInstance;
  const sockets: WelcomedSocket[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster();
    masters = cluster.nodes.map((node) => new Redis({ port: node.port, host: "127.0.0.1" }));
    const env = {
      REDIS_URL: cluster.urls,
      TETHER_REDIS_CLUSTER: "on",
      TETHER_API_KEY: API_KEY,
    };
    [a, slow] = await Promise.all([
      startInstance({
        ...env,
        TETHER_SESSION_CHECK_INTERVAL: `${CHECK_INTERVAL_MS}ms`,
        TETHER_SESSION_SWEEP_INTERVAL: `${SWEEP_MS}ms`,
      }),
      startInstance({ ...env, TETHER_SESSION_CHECK_INTERVAL: "5m" }),
    ]);
  }, 90_000);

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    for (const master of masters ?? []) master.disconnect();
    await Promise.all([a?.kill(), slow?.kill()]);
    await cluster?.close();
  });

  it(`${SESSIONS} idle sessions cost about one EXISTS each per sweep, not per round; one deleted in Redis is ended within a sweep`, async () => {
    const sessions: TestSession[] = [];
    for (let i = 0; i < SESSIONS; i++) sessions.push(await login(a.url, API_KEY));
    const tokens = await Promise.all(sessions.map((session) => wsToken(a.url, session)));
    const connected = await Promise.all(tokens.map((token) => connectRaw(a.url, { token })));
    sockets.push(...connected);

    const before = await clusterStats(masters);
    const start = Date.now();
    // Idleness is the scenario: two sweeps of it.
    await idleFor(WINDOW_MS);
    const delta = difference(await clusterStats(masters), before);
    const elapsed = Date.now() - start;
    const total = Object.values(delta).reduce((sum, calls) => sum + calls, 0);
    const rounds = elapsed / CHECK_INTERVAL_MS;
    const sweeps = elapsed / SWEEP_MS;
    const perSweep = SESSIONS * (sweeps + 1);
    const stats = JSON.stringify(delta);
    // Checked once per sweep each (a phase started anywhere in the first, one more at the edges);
    // the old code sent one EXISTS per session per round (SESSIONS × rounds ≈ 800 here).
    expect(delta.exists ?? 0, stats).toBeLessThanOrEqual(perSweep);
    expect(delta.exists ?? 0, stats).toBeGreaterThanOrEqual(SESSIONS * (sweeps - 1));
    expect(SESSIONS * rounds).toBeGreaterThan(4 * perSweep);
    // Everything else an idle instance sends is per shard, not per session.
    expect(total, stats).toBeLessThanOrEqual(perSweep + BACKGROUND_PER_SECOND * (elapsed / 1_000));

    // Gone without an end message (an operator's DEL): its socket is told within a sweep.
    const [victim, ...bystanders] = connected;
    const ended = nextEvent<SessionEndedPayload>(victim as WelcomedSocket, "session:ended", SWEEP_MS + 5_000);
    await cluster.client().del(`tether:sess:${sidOf(sessions[0] as TestSession)}`);
    expect(await ended).toEqual({ reason: "revoked" });
    expect(bystanders.every((socket) => socket.connected)).toBe(true);
    // Their checks would count in the next test's.
    for (const socket of connected) socket.close();
  });

  it("an end published while a shard's session-end subscriber was cut is found once it is back: the sessions of that shard are checked, long before a round", async () => {
    // Sessions on `slow` whose end channels are on one master, M, and others elsewhere.
    const onM: TestSession[] = [];
    const elsewhere: TestSession[] = [];
    let m: Redis | undefined;
    while (onM.length < ON_M || elsewhere.length < ELSEWHERE) {
      const session = await login(slow.url, API_KEY);
      const master = await masterOf(slotOf(topicChannel(sessionRoom(sidOf(session) ?? ""))));
      m ??= master;
      const [group, wanted] = master === m ? [onM, ON_M] : [elsewhere, ELSEWHERE];
      if (group.length < wanted) group.push(session);
    }
    const connected = await Promise.all(
      [...onM, ...elsewhere].map(async (session) => connectRaw(slow.url, { token: await wsToken(slow.url, session) })),
    );
    sockets.push(...connected);
    const victim = connected[0] as WelcomedSocket;
    const ended = nextEvent<SessionEndedPayload>(victim, "session:ended", 20_000);
    const before = await clusterStats(masters);

    // A logout elsewhere while M cuts its subscriber connections (as Redis does past the pub/sub
    // output-buffer limit): the session is deleted, and its end message goes out in the same
    // transaction as the cut, to no one.
    const sid = sidOf(onM[0] as TestSession) ?? "";
    await cluster.client().del(`tether:sess:${sid}`);
    const replies = await (m as Redis)
      .multi()
      .call("CLIENT", "KILL", "TYPE", "pubsub")
      .call("SPUBLISH", topicChannel(sessionRoom(sid)), JSON.stringify({ reason: "logout" }))
      .exec();
    expect(Number(replies?.[0]?.[1])).toBeGreaterThan(0);
    expect(replies?.[1]).toEqual([null, 0]);
    // Found by the check that follows the subscriber's return (the lost message said "logout"),
    // not by a round: `slow` runs one every 5 minutes.
    expect(await ended).toEqual({ reason: "revoked" });
    // That check covered the sessions of M's shard, not every session (a second replacement of
    // the same subscriber may check them twice; the ended session's stream script counts one EXISTS).
    const exists = difference(await clusterStats(masters), before).exists ?? 0;
    expect(exists).toBeGreaterThanOrEqual(ON_M);
    expect(exists).toBeLessThanOrEqual(2 * ON_M + 1);
    expect(connected.slice(1).every((socket) => socket.connected)).toBe(true);
  });

  /** The master serving a slot now. */
  async function masterOf(slot: number): Promise<Redis> {
    const ranges = (await masters[0]?.call("CLUSTER", "SLOTS")) as [number, number, [string, number]][];
    const port = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2][1];
    const node = masters.find((master) => master.options.port === port);
    if (!node) throw new Error(`no master serves slot ${slot}`);
    return node;
  }
});
