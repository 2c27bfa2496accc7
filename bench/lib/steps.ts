/**
 * The capacity ramp: one instance at its defaults (Tether: the socket cap from the fd limit,
 * 18,508 with 20,000 descriptors) taken in steps (0 → 5k → 10k → 18k by default), the same
 * for plain. Per step: connects/s, server CPU per connect, failed connects, and heap and RSS
 * per socket of the step (after a full GC at each step's end). The client workers hold the
 * sockets, each process with its own descriptors.
 */
import { type Bench, closeSockets, ensureLogins, inOrder, openSockets, quantile, specsFor } from "./context.js";
import { type SystemName, startInstance } from "./instances.js";
import { cpuMeter, machineCpuMeter, settle } from "./proc-stats.js";

export interface StepsOptions {
  /** Socket counts at the end of each step, ascending. */
  steps: number[];
  tabs: number;
  concurrency: number;
}

export interface StepResult {
  system: SystemName;
  /** Sockets at the end of the step. */
  sockets: number;
  connectsPerSecond: number;
  serverCpuMsPerConnect: number;
  /** Redis's CPU per connect in the step. */
  redisCpuMsPerConnect: number;
  /**
   * Every process's CPU per connect (server, Redis, the client workers, anyone else on the
   * box): when it times connects/s is near the cores, the box, not the server, bounds the step.
   */
  machineCpuMsPerConnect: number;
  /** From the start of a connect to `welcome` (retry hints waited out included). */
  latencyP50Ms: number | undefined;
  latencyP99Ms: number | undefined;
  heapKiBPerSocket: number;
  rssKiBPerSocket: number;
  rssMiB: number;
  failed: number;
  /** Handshakes turned away with a retry hint in the step (admission control), waited out by the clients. */
  hinted: number;
  firstError: string | undefined;
}

async function stepsOnce(bench: Bench, system: SystemName, options: StepsOptions): Promise<StepResult[]> {
  const redis = bench.redis[system];
  const instance = await startInstance(system, redis, { name: `${system}-1`, nodeFlags: bench.nodeFlags });
  const pids = [instance.pid, redis.pid() ?? 0];
  const results: StepResult[] = [];
  try {
    const last = options.steps.at(-1) ?? 0;
    await ensureLogins(bench, system, instance.url, Math.ceil(last / options.tabs));
    const target = { kind: system, url: instance.url };
    await openSockets(bench, target, specsFor(bench, system, 0, 25, options.tabs), 10);
    await closeSockets(bench, pids);
    let users = 0;
    let memory = await instance.probe();
    for (const step of options.steps) {
      const to = Math.ceil(step / options.tabs);
      const cpu = cpuMeter(instance.pid);
      const redisCpu = cpuMeter(redis.pid() ?? 0);
      const machineCpu = machineCpuMeter();
      const started = performance.now();
      const opened = await openSockets(
        bench,
        target,
        specsFor(bench, system, users, to, options.tabs),
        options.concurrency,
      );
      const seconds = (performance.now() - started) / 1000;
      const cpuMs = cpu();
      const [redisMs, machineMs] = [redisCpu(), machineCpu()];
      await settle(pids, { windowMs: 300, maxMs: 10_000 });
      const now = await instance.probe();
      const n = Math.max(1, opened.opened);
      results.push({
        system,
        sockets: step,
        connectsPerSecond: opened.opened / seconds,
        serverCpuMsPerConnect: cpuMs / n,
        redisCpuMsPerConnect: redisMs / n,
        machineCpuMsPerConnect: machineMs / n,
        latencyP50Ms: quantile(opened.latenciesMs, 0.5),
        latencyP99Ms: quantile(opened.latenciesMs, 0.99),
        heapKiBPerSocket: (now.heapUsed + now.external - memory.heapUsed - memory.external) / 1024 / n,
        rssKiBPerSocket: (now.rss - memory.rss) / 1024 / n,
        rssMiB: now.rss / 2 ** 20,
        failed: opened.failed,
        hinted: opened.hinted,
        firstError: opened.firstError,
      });
      bench.progress(
        `steps ${system}: ${step} sockets, ${(opened.opened / seconds).toFixed(0)} connects/s, ${opened.failed} failed, ${opened.hinted} waited out a retry hint; CPU ms per connect: server ${(cpuMs / n).toFixed(3)}, Redis ${(redisMs / n).toFixed(3)}, machine ${(machineMs / n).toFixed(3)}; latency p50 ${quantile(opened.latenciesMs, 0.5)?.toFixed(0)} ms, p99 ${quantile(opened.latenciesMs, 0.99)?.toFixed(0)} ms`,
      );
      memory = now;
      users = to;
    }
    await closeSockets(bench, pids);
    return results;
  } finally {
    await instance.stop();
  }
}

/** The stepped ramp, plain and Tether (one instance each, in turn). */
export async function runSteps(bench: Bench, options: StepsOptions): Promise<StepResult[]> {
  const results: StepResult[] = [];
  for (const system of inOrder<SystemName>(["plain", "tether"], 0)) {
    bench.progress(`steps ${system}: 0 → ${options.steps.join(" → ")} sockets`);
    results.push(...(await stepsOnce(bench, system, options)));
  }
  return results;
}

const f = (v: number | undefined, digits = 1) => (v === undefined ? "—" : v.toFixed(digits));
const x = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? "—" : `${(a / b).toFixed(2)}x`;

/** One line per step: plain, Tether, and the ratios; then what bounds each step (the machine's and Redis's CPU, latency). */
export function stepsTable(results: StepResult[]): string {
  const steps = [...new Set(results.map((r) => r.sockets))].map((step) => ({
    step,
    p: results.find((r) => r.system === "plain" && r.sockets === step),
    t: results.find((r) => r.system === "tether" && r.sockets === step),
  }));
  const lines = [
    "sockets  connects/s plain  Tether  ratio   CPU ms/connect plain  Tether  ratio   heap KiB/socket plain  Tether   RSS KiB/socket plain  Tether   RSS MiB T   failed T   hinted T",
  ];
  for (const { step, p, t } of steps) {
    lines.push(
      `${String(step).padStart(7)}  ${f(p?.connectsPerSecond, 0).padStart(16)}  ${f(t?.connectsPerSecond, 0).padStart(6)}  ${x(t?.connectsPerSecond, p?.connectsPerSecond).padStart(5)}   ${f(p?.serverCpuMsPerConnect, 3).padStart(20)}  ${f(t?.serverCpuMsPerConnect, 3).padStart(6)}  ${x(t?.serverCpuMsPerConnect, p?.serverCpuMsPerConnect).padStart(5)}   ${f(p?.heapKiBPerSocket, 2).padStart(21)}  ${f(t?.heapKiBPerSocket, 2).padStart(6)}   ${f(p?.rssKiBPerSocket, 2).padStart(20)}  ${f(t?.rssKiBPerSocket, 2).padStart(6)}   ${f(t?.rssMiB, 0).padStart(9)}   ${String(t?.failed ?? "—").padStart(8)}   ${String(t?.hinted ?? "—").padStart(8)}${t?.firstError ? ` (${t.firstError})` : ""}`,
    );
  }
  lines.push(
    "",
    "sockets  machine CPU ms/connect plain  Tether  ratio   Redis CPU ms/connect plain  Tether   latency p50 ms plain  Tether   p99 plain  Tether",
  );
  for (const { step, p, t } of steps) {
    lines.push(
      `${String(step).padStart(7)}  ${f(p?.machineCpuMsPerConnect, 3).padStart(28)}  ${f(t?.machineCpuMsPerConnect, 3).padStart(6)}  ${x(t?.machineCpuMsPerConnect, p?.machineCpuMsPerConnect).padStart(5)}   ${f(p?.redisCpuMsPerConnect, 3).padStart(26)}  ${f(t?.redisCpuMsPerConnect, 3).padStart(6)}   ${f(p?.latencyP50Ms, 0).padStart(20)}  ${f(t?.latencyP50Ms, 0).padStart(6)}   ${f(p?.latencyP99Ms, 0).padStart(9)}  ${f(t?.latencyP99Ms, 0).padStart(6)}`,
    );
  }
  return lines.join("\n");
}
