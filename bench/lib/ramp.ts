/**
 * Connect ramp to N sockets (default 10k) on one instance: the second half
 * (N/2 → N) is measured: server and Redis CPU per connect, connects/s, latency
 * (token request, handshake and `welcome`), Redis commands per connect; and
 * heap and RSS per connection from the two halves' memory after a full GC.
 * Users log in once each and open `tabs` sockets (a browser with tabs).
 */
import { type Bench, closeSockets, ensureLogins, inOrder, openSockets, quantile, specsFor } from "./context.js";
import { type SystemName, startInstance } from "./instances.js";
import { cpuMeter, settle } from "./proc-stats.js";
import { delta, RedisProbe } from "./redis.js";

export interface RampOptions {
  sockets: number;
  tabs: number;
  concurrency: number;
  rounds: number;
}

export interface RampResult {
  system: SystemName;
  connectsPerSecond: number;
  serverCpuMsPerConnect: number;
  redisCpuMsPerConnect: number;
  latencyP50Ms: number | undefined;
  latencyP99Ms: number | undefined;
  heapKiBPerConnection: number;
  rssKiBPerConnection: number;
  rssMiBAtFull: number;
  redisCommandsPerConnect: number;
  commandsPerConnect: Record<string, number>;
  failed: number;
}

const WARMUP_USERS = 50;

async function rampOnce(bench: Bench, system: SystemName, options: RampOptions): Promise<RampResult> {
  const redis = bench.redis[system];
  const instance = await startInstance(system, redis, { name: `${system}-1`, nodeFlags: bench.nodeFlags });
  const users = Math.ceil(options.sockets / options.tabs);
  const half = Math.floor(users / 2);
  const pids = [instance.pid, redis.pid() ?? 0];
  const probe = new RedisProbe(redis.url);
  try {
    await ensureLogins(bench, system, instance.url, users);
    const target = { kind: system, url: instance.url };
    // Warm-up: JIT, pools and the keep-alive connections of a few users.
    await openSockets(bench, target, specsFor(bench, system, 0, WARMUP_USERS, options.tabs), 10);
    await closeSockets(bench, pids);
    const first = await openSockets(bench, target, specsFor(bench, system, 0, half, options.tabs), options.concurrency);
    await settle(pids, { windowMs: 300, maxMs: 10_000 });
    const memoryBefore = await instance.probe();
    const redisBefore = await probe.counters();
    const serverCpu = cpuMeter(instance.pid);
    const redisCpu = cpuMeter(redis.pid() ?? 0);
    const started = performance.now();
    const second = await openSockets(
      bench,
      target,
      specsFor(bench, system, half, users, options.tabs),
      options.concurrency,
    );
    const seconds = (performance.now() - started) / 1000;
    const cpu = { server: serverCpu(), redis: redisCpu() };
    const commands = delta(redisBefore, await probe.counters());
    await settle(pids, { windowMs: 300, maxMs: 10_000 });
    const memoryAfter = await instance.probe();
    const n = second.opened;
    const kib = (pick: (m: NodeJS.MemoryUsage) => number) => (pick(memoryAfter) - pick(memoryBefore)) / 1024 / n;
    const commandsPerConnect: Record<string, number> = {};
    for (const [name, calls] of Object.entries(commands.byCommand)) commandsPerConnect[name] = calls / n;
    await closeSockets(bench, pids);
    return {
      system,
      connectsPerSecond: n / seconds,
      serverCpuMsPerConnect: cpu.server / n,
      redisCpuMsPerConnect: cpu.redis / n,
      latencyP50Ms: quantile(second.latenciesMs, 0.5),
      latencyP99Ms: quantile(second.latenciesMs, 0.99),
      heapKiBPerConnection: kib((m) => m.heapUsed + m.external),
      rssKiBPerConnection: kib((m) => m.rss),
      rssMiBAtFull: memoryAfter.rss / 1024 / 1024,
      redisCommandsPerConnect: commands.commands / n,
      commandsPerConnect,
      failed: first.failed + second.failed,
    };
  } finally {
    probe.close();
    await instance.stop();
  }
}

/** `rounds` ramps per system, alternating which goes first; a fresh instance each. */
export async function runRamp(bench: Bench, options: RampOptions): Promise<RampResult[]> {
  const results: RampResult[] = [];
  for (let round = 0; round < options.rounds; round++) {
    for (const system of inOrder<SystemName>(["plain", "tether"], round)) {
      bench.progress(`ramp ${round + 1}/${options.rounds}, ${system}: 0 → ${options.sockets} sockets`);
      results.push(await rampOnce(bench, system, options));
    }
  }
  return results;
}
