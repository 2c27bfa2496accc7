/**
 * Idle: `sessions` users each with one connected socket, left alone for
 * `seconds`: Redis commands per second (INFO commandstats) and server and Redis
 * CPU, per system. What an idle fleet costs: liveness, session touches, timers.
 */
import { type Bench, closeSockets, ensureLogins, openSockets, specsFor } from "./context.js";
import { type SystemName, startInstance } from "./instances.js";
import { cpuMeter, settle } from "./proc-stats.js";
import { delta, RedisProbe } from "./redis.js";

export interface IdleResult {
  system: SystemName;
  sockets: number;
  seconds: number;
  redisCommandsPerSecond: number;
  byCommandPerSecond: Record<string, number>;
  serverCpuPercent: number;
  redisCpuPercent: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runIdle(bench: Bench, sessions: number, seconds: number): Promise<IdleResult[]> {
  const results: IdleResult[] = [];
  for (const system of ["plain", "tether"] as const) {
    const redis = bench.redis[system];
    const instance = await startInstance(system, redis, { name: `${system}-1`, nodeFlags: bench.nodeFlags });
    const pids = [instance.pid, redis.pid() ?? 0];
    const probe = new RedisProbe(redis.url);
    try {
      bench.progress(`idle, ${system}: ${sessions} sessions (logins are paced by the login limit)`);
      await ensureLogins(bench, system, instance.url, sessions);
      const opened = await openSockets(
        bench,
        { kind: system, url: instance.url },
        specsFor(bench, system, 0, sessions, 1),
        32,
      );
      await settle(pids, { windowMs: 500, maxMs: 15_000 });
      bench.progress(`idle, ${system}: ${opened.opened} sockets idle for ${seconds}s`);
      const before = await probe.counters();
      const serverCpu = cpuMeter(instance.pid);
      const redisCpu = cpuMeter(redis.pid() ?? 0);
      await sleep(seconds * 1000);
      const d = delta(before, await probe.counters());
      const byCommandPerSecond: Record<string, number> = {};
      for (const [name, calls] of Object.entries(d.byCommand)) byCommandPerSecond[name] = calls / seconds;
      results.push({
        system,
        sockets: opened.opened,
        seconds,
        redisCommandsPerSecond: d.commands / seconds,
        byCommandPerSecond,
        serverCpuPercent: serverCpu() / seconds / 10,
        redisCpuPercent: redisCpu() / seconds / 10,
      });
      await closeSockets(bench, pids);
    } finally {
      probe.close();
      await instance.stop();
    }
  }
  return results;
}
