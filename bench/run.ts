/**
 * `npm run bench`: Tether against plain Socket.IO 4.8 + @socket.io/redis-adapter
 * (the straightforward design: express-session on connect-redis, the session
 * cookie checked on the upgrade), in the same run, alternating, as ratios.
 *
 *   npm run bench                          memory (bare, plain, Tether), connect/reconnect CPU, connect ramp,
 *                                          round trips, reconnect storm, fan-out scaling, publish latency
 *   npm run bench -- memory|reconnect|ramp|storm|fanout   one of them
 *   npm run bench -- capacity              one instance at its defaults to 18k sockets, in steps
 *                                          (each step in turns alternating with plain: `--step-turns`, 8)
 *   npm run bench -- idle                  10k idle sessions for a minute
 *   npm run bench -- publish               publish latency per durability setting
 *   npm run bench -- soak --minutes 30     churn soak, heap and RSS plotted
 *
 * `--quick` for a smoke run at small sizes; `--cpu-prof` writes the servers'
 * CPU profiles to bench/results/profiles; `--phase-prof` one per server of the reconnect
 * phase alone (and of the capacity ramp's last step); `--variants plain,tether+ticket` runs a subset of the reconnect scenario. Every server runs with Tether's
 * default limits and caps (the one exception is named in lib/instances.ts), and
 * as shipped: Tether from its build (made first, `npm run build`), NODE_ENV=production.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { type Bench, startWorkers } from "./lib/context.js";
import { runFanOut } from "./lib/fanout.js";
import { runIdle } from "./lib/idle.js";
import { type ServerKind, startPlain, startTether } from "./lib/instances.js";
import { runMemory } from "./lib/memory.js";
import { stop } from "./lib/procs.js";
import { publishTable, runPublishLatency } from "./lib/publish.js";
import { runRamp } from "./lib/ramp.js";
import { type ReconnectVariant, runInterleavedReconnects, runReconnects } from "./lib/reconnects.js";
import { startBenchRedis } from "./lib/redis.js";
import { formatTable, writeJson } from "./lib/report.js";
import {
  fanOutTable,
  idleTable,
  interleavedTable,
  memoryTable,
  rampRows,
  reconnectTable,
  roundTripTable,
  soakChart,
  stormChart,
  stormRows,
} from "./lib/results.js";
import { measureRoundTrips, type RoundTrips } from "./lib/round-trips.js";
import { runSoak } from "./lib/soak.js";
import { runSteps, stepsTable } from "./lib/steps.js";
import { runStorm } from "./lib/storm.js";

const BENCH_DIR = import.meta.dirname;
const ROOT = resolve(BENCH_DIR, "..");
const RESULTS = resolve(BENCH_DIR, "results");
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const cpuProf = args.includes("--cpu-prof");
// Read by bench/probe.ts in every server started from here on (see lib/phase-profile.ts).
if (args.includes("--phase-prof")) process.env.BENCH_PHASE_DIR = join(RESULTS, "profiles");
const scenario = args.find((arg) => !arg.startsWith("--") && !/^\d+$/.test(arg)) ?? "all";
const started = performance.now();
const progress = (text: string) => {
  const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(5);
  process.stderr.write(`bench [${seconds}s]: ${text}\n`);
};

/** A positive number from `--name N` or the environment (BENCH_NAME), else the default (the smoke one with --quick). */
function setting(name: string, normal: number, smoke: number): number {
  const flag = args.indexOf(`--${name}`);
  const text = flag >= 0 ? args[flag + 1] : process.env[`BENCH_${name.toUpperCase().replace(/-/g, "_")}`];
  const value = Number(text ?? (quick ? smoke : normal));
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

const SCENARIOS = ["all", "memory", "reconnect", "capacity", "ramp", "storm", "fanout", "publish", "idle", "soak"];

async function main(): Promise<void> {
  // Results (and a smoke run's charts) land here: a fresh clone has no such folder yet.
  mkdirSync(RESULTS, { recursive: true });
  mkdirSync(join(RESULTS, "profiles"), { recursive: true });
  if (!SCENARIOS.includes(scenario)) throw new Error(`unknown scenario ${scenario}; one of ${SCENARIOS.join(", ")}`);
  const machine = {
    date: new Date().toISOString(),
    node: process.version,
    cores: cpus().length,
    cpu: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadavgAtStart: loadavg(),
  };
  // The servers run Tether's build, as `npm start` does: made (or found up to date by turbo) first.
  execFileSync("npm", ["run", "build", "--silent", "--", "--output-logs=errors-only"], { cwd: ROOT, stdio: "inherit" });
  progress(`load average ${machine.loadavgAtStart.map((l) => l.toFixed(2)).join(" ")} on ${machine.cores} cores`);
  const [plainRedis, tetherRedis, workers] = await Promise.all([
    startBenchRedis(),
    startBenchRedis(),
    startWorkers(setting("clients", 3, 2)),
  ]);
  const bench: Bench = {
    workers,
    redis: { plain: plainRedis, tether: tetherRedis },
    cookies: { plain: [], tether: [] },
    quick,
    nodeFlags: cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${join(RESULTS, "profiles")}`] : [],
    progress,
    notes: [],
  };
  const out: string[] = [];
  const json: Record<string, unknown> = { machine };
  const print = (text: string) => {
    out.push(text);
    process.stdout.write(`\n${text}\n`);
  };
  try {
    if (scenario === "all" || scenario === "memory") {
      const options = {
        sockets: setting("memory-sockets", 10_000, 1_000),
        tabs: setting("tabs", 4, 4),
        concurrency: setting("concurrency", 32, 16),
        rounds: setting("memory-rounds", 1, 1),
        // `--systems bare,tether`: a subset, for development.
        ...(args.includes("--systems")
          ? { systems: (args[args.indexOf("--systems") + 1] ?? "").split(",") as ServerKind[] }
          : {}),
      };
      const memory = await runMemory(bench, options);
      print(`## Memory per idle socket: ${options.sockets} sockets (${options.tabs} per session), second half\n`);
      print(memoryTable(memory));
      json.memory = { options, results: memory };
    }
    if (scenario === "all" || scenario === "reconnect") {
      const options = {
        sockets: setting("reconnect-sockets", 4_000, 400),
        tabs: setting("tabs", 4, 4),
        concurrency: setting("concurrency", 32, 16),
        rounds: setting("reconnect-rounds", 1, 1),
        // `--variants plain,tether+ticket`: a subset, for development.
        ...(args.includes("--variants")
          ? { variants: (args[args.indexOf("--variants") + 1] ?? "").split(",") as ReconnectVariant[] }
          : {}),
      };
      const reconnects = await runReconnects(bench, options);
      print(
        `## Server CPU per connect and per reconnect: ${options.sockets} sockets, each closed and connected again\n`,
      );
      print(reconnectTable(reconnects));
      json.reconnects = { options, results: reconnects };
      if (!options.variants || options.variants.includes("tether+ticket")) {
        const turns = setting("reconnect-turns", 8, 4);
        const interleaved = await runInterleavedReconnects(bench, { ...options, turns });
        print(
          `## Ticket reconnects interleaved with plain ones: ${options.sockets} sockets each, ${turns} turns of ${Math.round(options.sockets / turns)}\n`,
        );
        print(interleavedTable(interleaved));
        json.interleavedReconnects = { options: { ...options, turns }, result: interleaved };
      }
    }
    if (scenario === "capacity") {
      const options = {
        steps: quick ? [500, 1_000, 2_000] : [5_000, 10_000, 18_000],
        tabs: setting("tabs", 4, 4),
        concurrency: setting("concurrency", 32, 16),
        turns: setting("step-turns", 8, 2),
      };
      const steps = await runSteps(bench, options);
      print(`## Capacity ramp, one instance at its defaults: 0 → ${options.steps.join(" → ")} sockets\n`);
      print(stepsTable(steps));
      json.capacity = { options, results: steps };
    }
    if (scenario === "all" || scenario === "ramp") {
      const options = {
        sockets: setting("sockets", 10_000, 400),
        tabs: setting("tabs", 4, 4),
        concurrency: setting("concurrency", 32, 16),
        rounds: setting("rounds", 3, 1),
      };
      const ramp = await runRamp(bench, options);
      print(`## Connect ramp 0 → ${options.sockets} (measured ${options.sockets / 2} → ${options.sockets})\n`);
      print(formatTable(rampRows(ramp)));
      const trips: RoundTrips[] = [];
      for (const [label, system, env] of [
        ["plain", "plain", {}],
        ["tether, default limits", "tether", {}],
        ["tether, TETHER_RATE_LIMITS=off", "tether", { TETHER_RATE_LIMITS: "off" }],
      ] as const) {
        const redis = bench.redis[system];
        const instance =
          system === "plain"
            ? await startPlain(redis, { name: "plain-rt" })
            : await startTether(redis, { name: "tether-rt", env });
        try {
          trips.push(await measureRoundTrips(bench, instance, label, quick ? 5 : 25));
        } finally {
          await instance.stop();
        }
      }
      print(roundTripTable(trips));
      json.ramp = { options, results: ramp, roundTrips: trips };
    }
    if (scenario === "all" || scenario === "storm") {
      const options = {
        clients: setting("storm-clients", 4_000, 200),
        tabs: 4,
        concurrency: setting("concurrency", 32, 16),
        rounds: setting("storm-rounds", 2, 1),
        timeoutMs: 60_000,
      };
      const storm = await runStorm(bench, options);
      print(`## Reconnect storm: ${options.clients} clients over 2 instances behind HAProxy, kill -9 of one\n`);
      print(formatTable(stormRows(storm)));
      const svg = stormChart(storm);
      writeFileSync(join(quick ? RESULTS : ROOT, "BENCHMARKS-storm.svg"), svg);
      json.storm = {
        options,
        results: storm.map((r) => ({
          ...r,
          reconnectedMs: undefined,
          curve: r.reconnectedMs.filter((_, i) => i % 10 === 0),
        })),
      };
    }
    if (scenario === "all" || scenario === "fanout") {
      const options = {
        sizes: quick ? [1, 2] : [1, 2, 4],
        users: setting("fanout-users", 400, 40),
        rate: setting("rate", 2, 1),
        seconds: setting("seconds", 10, 3),
      };
      const fanOut = await runFanOut(bench, options);
      print(`## Fan-out scaling: ${options.users} users, ${options.rate} events/s each, ${options.seconds}s\n`);
      print(fanOutTable(fanOut));
      json.fanOut = { options, results: fanOut };
    }
    if (scenario === "all" || scenario === "publish") {
      const count = setting("publishes", 2_000, 200);
      const latency = await runPublishLatency(bench, count);
      print(`## Publish latency: ${count} sequential publishes per setting (a worker, an id per call)\n`);
      print(publishTable(latency));
      json.publish = { count, results: latency };
    }
    if (scenario === "idle") {
      const sessions = setting("sessions", 10_000, 200);
      const seconds = setting("seconds", 60, 10);
      const idle = await runIdle(bench, sessions, seconds);
      print(`## Idle: ${sessions} sessions, one socket each, for ${seconds}s\n`);
      print(idleTable(idle));
      json.idle = idle;
    }
    if (scenario === "soak") {
      const options = {
        minutes: setting("minutes", 30, 1),
        pool: setting("pool", 2_000, 200),
        churn: setting("churn", 20, 10),
        rate: setting("rate", 50, 10),
        users: setting("soak-users", 500, 50),
        sampleSeconds: setting("sample-seconds", 30, 10),
      };
      const samples = await runSoak(bench, options);
      writeFileSync(join(quick ? RESULTS : ROOT, "BENCHMARKS-soak.svg"), soakChart(samples, options));
      print(`## Soak: ${JSON.stringify(options)}\n`);
      print(
        samples.map((s) => `${s.seconds}s heap ${s.heapMiB.toFixed(1)} MiB rss ${s.rssMiB.toFixed(1)} MiB`).join("\n"),
      );
      json.soak = { options, samples };
    }
    if (bench.notes.length > 0) print(bench.notes.map((note) => `note: ${note}`).join("\n"));
    const loadAtEnd = loadavg();
    print(
      `machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}; load average at start ${machine.loadavgAtStart.map((l) => l.toFixed(2)).join(" ")}, at end ${loadAtEnd.map((l) => l.toFixed(2)).join(" ")}; ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    const name = `${scenario === "all" ? "latest" : `latest-${scenario}`}${quick ? "-quick" : ""}`;
    writeJson(join(RESULTS, `${name}.json`), [], { ...json, loadavgAtEnd: loadAtEnd, notes: bench.notes });
    writeFileSync(join(RESULTS, `${name}.md`), `${out.join("\n\n")}\n`);
  } finally {
    await Promise.all(workers.map((worker) => stop(worker.child)));
    await Promise.all([plainRedis.close(), tetherRedis.close()]);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
