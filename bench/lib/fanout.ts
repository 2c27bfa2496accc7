/**
 * Fan-out scaling: 1, 2 and 4 instances of a system, users spread evenly (user i
 * on instance i mod n, one socket each), a publisher sending a fixed rate per
 * user from this process (Tether: `createPublisher`, as a worker would; plain:
 * a Socket.IO server with the Redis adapter and no clients, `io.to(room).emit`).
 * Per instance: pub/sub messages its Redis connections received, and server CPU
 * per delivered event; both must stay flat as instances grow.
 */
import { createAdapter } from "@socket.io/redis-adapter";
import { createPublisher, loadConfig } from "@tether/server";
import type { TestRedis } from "@tether/testkit/redis";
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { type Bench, closeSockets, counters, ensureLogins, inOrder, openSockets, specsFor } from "./context.js";
import { type Instance, type SystemName, startInstance } from "./instances.js";
import { cpuMeter, settle } from "./proc-stats.js";
import { BENCH_EVENT, benchPayload } from "./protocol.js";

/** How long each instance is watched idle before the events, to subtract its idle cost. */
const IDLE_SAMPLE_MS = 3_000;

export interface FanOutOptions {
  sizes: number[];
  users: number;
  /** Events per user per second. */
  rate: number;
  seconds: number;
}

export interface FanOutResult {
  system: SystemName;
  instances: number;
  published: number;
  delivered: number;
  /** Pub/sub messages received per instance (ioredis connections, counted by bench/probe.ts). */
  pubsubPerInstance: number[];
  /** `tether_fanout_messages_total` per instance, when the instances have it. */
  fanoutCounterPerInstance: (number | undefined)[];
  /** Server CPU (all instances) per delivered event, µs. */
  serverCpuUsPerDelivered: number;
  /**
   * The same less what the instances spend idle (timers, pings, GC) over as long:
   * the work the events cost, which per-stream routing keeps flat as instances grow.
   */
  serverCpuAboveIdleUsPerDelivered: number;
  redisCpuUsPerDelivered: number;
}

interface Publisher {
  publish(user: string, seq: number): Promise<void>;
  close(): Promise<void>;
}

async function publisherFor(system: SystemName, redis: TestRedis): Promise<Publisher> {
  if (system === "tether") {
    const publisher = await createPublisher(loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "warn" }));
    return {
      publish: async (user, seq) => void (await publisher.publish({ user }, BENCH_EVENT, benchPayload(seq))),
      close: () => publisher.close(),
    };
  }
  const pub = new Redis(redis.url);
  const sub = pub.duplicate();
  const io = new Server({ adapter: createAdapter(pub, sub) });
  const base = Date.now();
  return {
    publish: async (user, seq) => {
      io.to(`user:${user}`).emit(BENCH_EVENT, { ...benchPayload(seq), offset: `${base}-${seq}` });
    },
    close: async () => {
      pub.disconnect();
      sub.disconnect();
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function fanOutOnce(bench: Bench, system: SystemName, size: number, options: FanOutOptions) {
  const redis = bench.redis[system];
  const instances: Instance[] = [];
  for (let i = 0; i < size; i++) {
    instances.push(await startInstance(system, redis, { name: `${system}-${i + 1}`, nodeFlags: bench.nodeFlags }));
  }
  const publisher = await publisherFor(system, redis);
  const pids = [...instances.map((instance) => instance.pid), redis.pid() ?? 0];
  try {
    await ensureLogins(bench, system, instances[0]!.url, options.users);
    const targetOf = (user: string) => ({ kind: system, url: instances[Number(user.slice(1)) % size]!.url });
    await openSockets(bench, targetOf, specsFor(bench, system, 0, options.users, 1), 32);
    await settle(pids, { windowMs: 300, maxMs: 10_000 });
    const probesBefore = await Promise.all(instances.map((instance) => instance.probe()));
    const countersBefore = await Promise.all(instances.map((instance) => instance.fanoutCounter()));
    await counters(bench);
    // Each instance's idle cost first (sockets open, nothing published), as a rate.
    const idle = instances.map((instance) => cpuMeter(instance.pid));
    await sleep(IDLE_SAMPLE_MS);
    const idleMsPerMs = idle.reduce((sum, meter) => sum + meter(), 0) / IDLE_SAMPLE_MS;
    const measuredFrom = performance.now();
    const serverCpu = instances.map((instance) => cpuMeter(instance.pid));
    const redisCpu = cpuMeter(redis.pid() ?? 0);
    // A fixed rate per user: every 100 ms a tenth of a second's events, users in turn.
    const perTick = (options.users * options.rate) / 10;
    const ticks = options.seconds * 10;
    let seq = 0;
    let carry = 0;
    const inFlight: Promise<void>[] = [];
    const started = performance.now();
    for (let tick = 0; tick < ticks; tick++) {
      carry += perTick;
      for (; carry >= 1; carry--) {
        inFlight.push(publisher.publish(`u${seq % options.users}`, seq));
        seq++;
      }
      await sleep(Math.max(0, started + (tick + 1) * 100 - performance.now()));
    }
    await Promise.all(inFlight);
    const deadline = Date.now() + 15_000;
    let delivered = 0;
    while (Date.now() < deadline) {
      delivered += (await counters(bench)).received;
      if (delivered >= seq) break;
      await sleep(200);
    }
    const cpu = serverCpu.reduce((sum, meter) => sum + meter(), 0);
    const idleCpu = idleMsPerMs * (performance.now() - measuredFrom);
    const redisMs = redisCpu();
    const probesAfter = await Promise.all(instances.map((instance) => instance.probe()));
    const countersAfter = await Promise.all(instances.map((instance) => instance.fanoutCounter()));
    await closeSockets(bench, pids);
    return {
      system,
      instances: size,
      published: seq,
      delivered,
      pubsubPerInstance: probesAfter.map((p, i) => p.pubsubMessages - (probesBefore[i]?.pubsubMessages ?? 0)),
      fanoutCounterPerInstance: countersAfter.map((after, i) => {
        const before = countersBefore[i];
        return after === undefined || before === undefined ? undefined : after - before;
      }),
      serverCpuUsPerDelivered: (cpu * 1000) / Math.max(1, delivered),
      serverCpuAboveIdleUsPerDelivered: (Math.max(0, cpu - idleCpu) * 1000) / Math.max(1, delivered),
      redisCpuUsPerDelivered: (redisMs * 1000) / Math.max(1, delivered),
    } satisfies FanOutResult;
  } finally {
    await publisher.close();
    await Promise.all(instances.map((instance) => instance.stop()));
  }
}

export async function runFanOut(bench: Bench, options: FanOutOptions): Promise<FanOutResult[]> {
  const results: FanOutResult[] = [];
  for (const [round, size] of options.sizes.entries()) {
    for (const system of inOrder<SystemName>(["plain", "tether"], round)) {
      bench.progress(`fan-out, ${system} on ${size} instance(s): ${options.users} users, ${options.rate}/s each`);
      results.push(await fanOutOnce(bench, system, size, options));
    }
  }
  if (results.some((r) => r.system === "tether" && r.fanoutCounterPerInstance.every((c) => c === undefined))) {
    bench.notes.push(
      "fan-out: the instances have no tether_fanout_messages_total yet; messages received are counted by the bench's probe (every pub/sub message the instance's ioredis connections delivered).",
    );
  }
  return results;
}
