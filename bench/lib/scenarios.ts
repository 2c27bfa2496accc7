/**
 * The three measurements, each run the same way against either system:
 * connect cost, fan-out to one client, and memory per idle socket.
 */
import type { Peer } from "./ipc.js";
import { cpuMeter, settle } from "./proc-stats.js";
import type { WorkerProtocol } from "./protocol.js";
import type { System } from "./systems.js";

export type Worker = Peer<WorkerProtocol>;

/** CPU ms per unit of work, by process role. */
export interface CpuPer {
  server: number;
  redis: number | undefined;
}

const pidsOf = (system: System) => Object.values(system.pids).filter((pid): pid is number => pid !== undefined);

/** Splits `total` into `parts` near-equal shares. */
function shares(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

/** Failed connects tolerated (and reported) before a measurement is thrown away: a busy machine drops a few. */
const MAX_FAILED_SHARE = 0.01;

/** Opens `count` sockets across the workers; returns how many opened. Warns of any failure. */
async function openSockets(system: System, workers: Worker[], count: number, concurrency: number): Promise<number> {
  const counts = shares(count, workers.length);
  const lanes = shares(concurrency, workers.length);
  const results = await Promise.all(
    workers.map((worker, i) =>
      worker.request("connect", {
        url: system.url,
        // Each worker its own sessions, as each browser holds its own.
        cookies: system.cookies.filter((_, n) => n % workers.length === i),
        count: counts[i] ?? 0,
        concurrency: Math.max(1, lanes[i] ?? 1),
      }),
    ),
  );
  const failed = results.reduce((sum, r) => sum + r.failed, 0);
  if (failed === 0) return count;
  const why = `${system.name}: ${failed} of ${count} connects failed: ${results.find((r) => r.firstError)?.firstError}`;
  if (failed > count * MAX_FAILED_SHARE) throw new Error(why);
  process.stderr.write(`bench: warning: ${why}\n`);
  return count - failed;
}

async function closeAll(system: System, workers: Worker[]): Promise<void> {
  await Promise.all(workers.map((worker) => worker.request("close", {})));
  await settle(pidsOf(system));
}

/** Starts measuring a system's CPU: the returned function gives it per unit of work done since. */
function cpuPer(system: System): (units: number) => CpuPer {
  const { server, redis } = system.pids;
  const serverCpu = cpuMeter(server);
  const redisCpu = redis === undefined ? undefined : cpuMeter(redis);
  return (units) => ({ server: serverCpu() / units, redis: redisCpu === undefined ? undefined : redisCpu() / units });
}

/** Connects (and closes) sockets so JIT and pools are warm before anything is measured. */
export async function warmUp(system: System, workers: Worker[], count: number): Promise<void> {
  await openSockets(system, workers, count, 10);
  await closeAll(system, workers);
}

/**
 * Connect cost: `count` connects, `concurrency` in flight; each one is, for
 * Tether, a token request plus a handshake, and for both, waiting for `welcome`.
 * Sockets stay open until the measurement ends (a reconnect storm keeps them).
 */
export async function measureConnects(system: System, workers: Worker[], count: number, concurrency: number) {
  await settle(pidsOf(system));
  const cpu = cpuPer(system);
  const started = performance.now();
  const opened = await openSockets(system, workers, count, concurrency);
  const seconds = (performance.now() - started) / 1000;
  const cpuMsPerConnect = cpu(opened);
  await closeAll(system, workers);
  return { perSecond: opened / seconds, cpuMsPerConnect, failed: count - opened };
}

/** Fan-out: the system pushes `count` events to one connected client; timed until the last arrives. */
export async function measureFanOut(system: System, worker: Worker, count: number) {
  if ((await openSockets(system, [worker], 1, 1)) !== 1) throw new Error(`${system.name}: could not connect`);
  await worker.request("arm", { event: "bench", count });
  await settle(pidsOf(system));
  const cpu = cpuPer(system);
  const started = performance.now();
  const [, got] = await Promise.all([system.emit("bench", count), worker.request("received", { timeoutMs: 60_000 })]);
  const seconds = (performance.now() - started) / 1000;
  const cpuMsPerThousand = cpu(count / 1000);
  await closeAll(system, [worker]);
  if (got.received !== count) throw new Error(`${system.name}: ${got.received} of ${count} events arrived`);
  return { perSecond: count / seconds, cpuMsPerThousand };
}

/** Least-squares slope of y over x. */
function slope(points: [x: number, y: number][]): number {
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const mx = mean(points.map(([x]) => x));
  const my = mean(points.map(([, y]) => y));
  const num = points.reduce((sum, [x, y]) => sum + (x - mx) * (y - my), 0);
  return num / points.reduce((sum, [x]) => sum + (x - mx) ** 2, 0);
}

/**
 * Idle memory: growth of the server's RSS and of its JS heap (used heap plus
 * external buffers) per connected, idle socket, read after a full GC. `prefill`
 * sockets first take up the heap already committed (which differs with each
 * server's history); then `count` more are opened in `steps`, memory read after
 * each, and the per-socket figure is the fitted slope (V8 commits heap in steps of MBs).
 */
export async function measureIdleMemory(system: System, workers: Worker[], prefill: number, count: number, steps = 4) {
  let held = 0;
  const points: { sockets: number; memory: NodeJS.MemoryUsage }[] = [];
  for (const batch of [prefill, ...shares(count, steps)]) {
    held += await openSockets(system, workers, batch, 20);
    await settle(pidsOf(system), { windowMs: 300 });
    points.push({ sockets: held, memory: await system.memory() });
  }
  await closeAll(system, workers);
  const perSocket = (pick: (m: NodeJS.MemoryUsage) => number) =>
    slope(points.map(({ sockets, memory }) => [sockets, pick(memory) / 1024]));
  return {
    rssKiBPerSocket: perSocket((m) => m.rss),
    heapKiBPerSocket: perSocket((m) => m.heapUsed + m.external),
    rssMiB: (points.at(-1)?.memory.rss ?? 0) / 1024 / 1024,
    failed: prefill + count - held,
    points: points.map(({ sockets, memory }) => ({ sockets, ...memory })),
  };
}
