/**
 * The capacity ramp: one instance at its defaults (Tether: the socket cap from the fd limit,
 * 18,508 with 20,000 descriptors) taken in steps (0 → 5k → 10k → 18k by default), and one plain
 * instance beside it. Each step is run in turns that alternate between the two (each turn opens
 * its share of the step's users on one of them), so the drift of a shared box over a step falls on
 * both alike instead of on whichever ran later. Per step and system: connects/s over its own turns,
 * server and Redis CPU per connect over the whole step (the collector's work on a turn's garbage may
 * run during the other's turn: it is still this server's), the machine's CPU over its own turns,
 * failed connects, and heap and RSS per socket of the step (after a full GC at each step's end).
 * The client workers hold the sockets, each process with its own descriptors.
 */
import { type Bench, closeSockets, ensureLogins, inOrder, openSockets, quantile, specsFor } from "./context.js";
import { type Instance, type SystemName, startInstance } from "./instances.js";
import { profilePhase } from "./phase-profile.js";
import { cpuMeter, machineCpuMeter, settle } from "./proc-stats.js";

export interface StepsOptions {
  /** Socket counts at the end of each step, ascending. */
  steps: number[];
  tabs: number;
  concurrency: number;
  /** Turns per step, alternating between plain and Tether (each opens 1/turns of the step's users). */
  turns: number;
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
  /** Tether's row: its connects/s over plain's in each pair of turns of the step. */
  turnRatios?: number[];
}

/** What one system's turns of a step added up to. */
interface StepTally {
  opened: number;
  failed: number;
  hinted: number;
  firstError: string | undefined;
  latenciesMs: number[];
  seconds: number;
  serverMs: number;
  redisMs: number;
  machineMs: number;
}

const emptyTally = (): StepTally => ({
  opened: 0,
  failed: 0,
  hinted: 0,
  firstError: undefined,
  latenciesMs: [],
  seconds: 0,
  serverMs: 0,
  redisMs: 0,
  machineMs: 0,
});

/**
 * The wait after each turn: until both servers and Redises are quiet, at most a second (at 18k
 * sockets an instance's heartbeats alone keep it above `settle`'s quiet line).
 */
const TURN_SETTLE = { windowMs: 200, maxMs: 1_000 };

/** `from`…`to` cut into `parts` consecutive ranges (some may be empty). */
function slices(from: number, to: number, parts: number): [number, number][] {
  return Array.from({ length: parts }, (_, i) => [
    from + Math.floor(((to - from) * i) / parts),
    from + Math.floor(((to - from) * (i + 1)) / parts),
  ]);
}

/** The stepped ramp, plain and Tether side by side (one instance each), each step in alternating turns. */
export async function runSteps(bench: Bench, options: StepsOptions): Promise<StepResult[]> {
  const systems: SystemName[] = ["plain", "tether"];
  const instances = {} as Record<SystemName, Instance>;
  for (const system of systems)
    instances[system] = await startInstance(system, bench.redis[system], {
      name: `${system}-1`,
      nodeFlags: bench.nodeFlags,
    });
  const redisPid = (system: SystemName) => bench.redis[system].pid() ?? 0;
  const pids = systems.flatMap((system) => [instances[system].pid, redisPid(system)]);
  const results: StepResult[] = [];
  try {
    const last = options.steps.at(-1) ?? 0;
    for (const system of systems) {
      const instance = instances[system];
      await ensureLogins(bench, system, instance.url, Math.ceil(last / options.tabs));
      // Warm-up: JIT, pools and the keep-alive connections of a few users.
      await openSockets(bench, { kind: system, url: instance.url }, specsFor(bench, system, 0, 25, options.tabs), 10);
    }
    await closeSockets(bench, pids);
    bench.progress(`steps: 0 → ${options.steps.join(" → ")} sockets, plain and Tether in turns`);
    const memory = { plain: await instances.plain.probe(), tether: await instances.tether.probe() };
    let users = 0;
    let turn = 0;
    for (const step of options.steps) {
      const to = Math.ceil(step / options.tabs);
      const tally = { plain: emptyTally(), tether: emptyTally() };
      // Tether's connects/s over plain's, per pair of turns: how much of a step's ratio is the box's drift.
      const turnRatios: number[] = [];
      // With `--phase-prof`: each server's CPU profile over the last step.
      const profiles =
        step === last ? await Promise.all(systems.map((system) => profilePhase(bench, instances[system].pid))) : [];
      await settle(pids, TURN_SETTLE);
      for (const [from, upTo] of slices(users, to, options.turns)) {
        const rate = { plain: 0, tether: 0 };
        for (const system of inOrder(systems, turn++)) {
          const t = tally[system];
          const cpu = { server: cpuMeter(instances[system].pid), redis: cpuMeter(redisPid(system)) };
          const machineCpu = machineCpuMeter();
          const started = performance.now();
          const done = await openSockets(
            bench,
            { kind: system, url: instances[system].url },
            specsFor(bench, system, from, upTo, options.tabs),
            options.concurrency,
          );
          const seconds = (performance.now() - started) / 1000;
          t.seconds += seconds;
          rate[system] = done.opened / seconds;
          t.machineMs += machineCpu();
          // The turn's tail (its garbage collected, its writes flushed) is its own: counted before the next turn.
          await settle(pids, TURN_SETTLE);
          t.serverMs += cpu.server();
          t.redisMs += cpu.redis();
          t.opened += done.opened;
          t.failed += done.failed;
          t.hinted += done.hinted;
          t.firstError ??= done.firstError;
          t.latenciesMs.push(...done.latenciesMs);
        }
        turnRatios.push(rate.tether / Math.max(1e-9, rate.plain));
      }
      await settle(pids, { windowMs: 300, maxMs: 3_000 });
      for (const profile of profiles) await profile?.stop();
      for (const system of systems) {
        const t = tally[system];
        const n = Math.max(1, t.opened);
        const [cpuMs, redisMs] = [t.serverMs, t.redisMs];
        const now = await instances[system].probe();
        const before = memory[system];
        results.push({
          system,
          sockets: step,
          connectsPerSecond: t.opened / Math.max(1e-9, t.seconds),
          serverCpuMsPerConnect: cpuMs / n,
          redisCpuMsPerConnect: redisMs / n,
          machineCpuMsPerConnect: t.machineMs / n,
          latencyP50Ms: quantile(t.latenciesMs, 0.5),
          latencyP99Ms: quantile(t.latenciesMs, 0.99),
          heapKiBPerSocket: (now.heapUsed + now.external - before.heapUsed - before.external) / 1024 / n,
          rssKiBPerSocket: (now.rss - before.rss) / 1024 / n,
          rssMiB: now.rss / 2 ** 20,
          failed: t.failed,
          hinted: t.hinted,
          firstError: t.firstError,
          ...(system === "tether" ? { turnRatios } : {}),
        });
        bench.progress(
          `steps ${system}: ${step} sockets, ${(t.opened / t.seconds).toFixed(0)} connects/s, ${t.failed} failed, ${t.hinted} waited out a retry hint; CPU ms per connect: server ${(cpuMs / n).toFixed(3)}, Redis ${(redisMs / n).toFixed(3)}, machine ${(t.machineMs / n).toFixed(3)}; latency p50 ${quantile(t.latenciesMs, 0.5)?.toFixed(0)} ms, p99 ${quantile(t.latenciesMs, 0.99)?.toFixed(0)} ms`,
        );
        memory[system] = now;
      }
      users = to;
    }
    await closeSockets(bench, pids);
    return results;
  } finally {
    await Promise.all(systems.map((system) => instances[system]?.stop()));
  }
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
  lines.push("", "sockets  connects/s ratio in each pair of turns (Tether ÷ plain)");
  for (const { step, t } of steps)
    lines.push(`${String(step).padStart(7)}  ${(t?.turnRatios ?? []).map((r) => r.toFixed(2)).join("  ")}`);
  return lines.join("\n");
}
