/**
 * `npm run bench`: Tether against plain Socket.IO 4.8, in the same run, on
 * 127.0.0.1, reported as ratios. Connect cost (token + handshake + welcome),
 * fan-out to one client, and server memory per idle socket.
 *
 * Options (environment): BENCH_CONNECTS, BENCH_CONCURRENCY, BENCH_ROUNDS,
 * BENCH_EVENTS, BENCH_IDLE, BENCH_CLIENTS (client processes); `--quick` for a
 * smoke run; `--cpu-prof` writes both servers' CPU profiles to bench/results/profiles.
 */
import { mkdirSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { Peer } from "./lib/ipc.js";
import { spawnNode, stop } from "./lib/procs.js";
import type { WorkerProtocol } from "./lib/protocol.js";
import { startRedis } from "./lib/redis.js";
import { formatTable, writeJson } from "./lib/report.js";
import type { Worker } from "./lib/scenarios.js";
import { mostSockets, NOTES, rowsOf, runSuite, type SuiteOptions } from "./lib/suite.js";
import { startPlain, startTether } from "./lib/systems.js";

const BENCH_DIR = import.meta.dirname;
const RESULTS = resolve(BENCH_DIR, "results");
const quick = process.argv.includes("--quick");
const cpuProf = process.argv.includes("--cpu-prof");
/** Sockets per Tether session at most: a browser with a few tabs (Tether caps sockets per session). */
const SOCKETS_PER_SESSION = 8;
const started = performance.now();
const progress = (text: string) => {
  const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(5);
  process.stderr.write(`bench [${seconds}s]: ${text}\n`);
};

/** A positive integer from the environment, or the default (the smoke default with `--quick`). */
function setting(name: string, normal: number, smoke: number): number {
  const value = Number(process.env[name] ?? (quick ? smoke : normal));
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
}

function readOptions(): SuiteOptions & { clients: number } {
  return {
    connects: setting("BENCH_CONNECTS", 500, 100),
    concurrency: setting("BENCH_CONCURRENCY", 20, 10),
    rounds: setting("BENCH_ROUNDS", 5, 1),
    events: setting("BENCH_EVENTS", 10_000, 2_000),
    idleSockets: setting("BENCH_IDLE", 2_000, 400),
    clients: setting("BENCH_CLIENTS", 2, 2),
    warmup: 100,
  };
}

/** Client processes, so the clients' CPU never counts as a server's. */
function startWorkers(count: number): Promise<Worker[]> {
  const script = join(BENCH_DIR, "client-worker.ts");
  const start = () => spawnNode(script, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return Promise.all(Array.from({ length: count }, async () => (await Peer.connect<WorkerProtocol>(start())).peer));
}

async function main(): Promise<void> {
  const options = readOptions();
  const nodeFlags = cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${join(RESULTS, "profiles")}`] : [];
  mkdirSync(RESULTS, { recursive: true });
  const load = loadavg();
  progress(`load average ${load.map((l) => l.toFixed(2)).join(" ")} on ${cpus().length} cores; starting`);
  const sessions = Math.ceil(mostSockets(options) / SOCKETS_PER_SESSION);
  const redis = await startRedis();
  const [plain, tether, workers] = await Promise.all([
    startPlain(nodeFlags),
    startTether(redis, { sessions, nodeFlags, logFile: join(RESULTS, "tether.log") }),
    startWorkers(options.clients),
  ]);
  const pids = `plain ${plain.pids.server}, tether ${tether.pids.server}, redis ${tether.pids.redis}`;
  progress(`servers up (pids: ${pids}); warming up`);
  try {
    const measured = await runSuite([plain, tether], workers, options, progress);
    const rows = rowsOf(measured, options);
    const rounds = options.rounds === 1 ? "one round" : `medians of ${options.rounds} rounds`;
    const notes = [`ratio = Tether ÷ plain Socket.IO; connects and fan-out: ${rounds}.`, ...NOTES];
    process.stdout.write(`\n${formatTable(rows)}\n\n${notes.join("\n")}\n`);
    const file = join(RESULTS, "latest.json");
    const context = { date: new Date().toISOString(), node: process.version, cores: cpus().length, loadavg: load };
    writeJson(file, rows, { ...context, options, raw: measured });
    progress(`wrote ${file}${cpuProf ? `; CPU profiles in ${join(RESULTS, "profiles")}` : ""}`);
  } finally {
    await Promise.all([plain.stop(), tether.stop(), ...workers.map((worker) => stop(worker.child))]);
    await stop(redis.child);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
