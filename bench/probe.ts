/**
 * Preloaded into every server the bench starts (`node --expose-gc --import bench/probe.ts`),
 * the server's own code untouched:
 * - on SIGUSR2, three full GCs 300 ms apart, then `process.memoryUsage()` and the counters below are
 *   written to the file named by BENCH_PROBE_FILE (memory is compared after a full
 *   collection, not at whatever point the collector happened to be);
 * - pub/sub messages received by the process's ioredis connections (message, pmessage,
 *   smessage), counted the same way for plain Socket.IO's adapter and for Tether;
 * - with BENCH_PHASE_DIR set (`--phase-prof`): on SIGTTIN a CPU profile starts, on SIGTTOU it
 *   stops and is written there as `<pid>-<n>.cpuprofile`: one phase of a scenario, not the
 *   whole run (logins, the first connects) as `--cpu-prof` gives.
 */
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { Redis } from "ioredis";

/** Full collections per memory reading, and the pause after each. */
const GC_ROUNDS = 3;
const GC_PAUSE_MS = 300;
const PUBSUB_EVENTS = new Set(["messageBuffer", "pmessageBuffer", "smessageBuffer"]);
let pubsubMessages = 0;
const emit = Redis.prototype.emit;
Redis.prototype.emit = function (this: Redis, event: string | symbol, ...args: unknown[]) {
  if (typeof event === "string" && PUBSUB_EVENTS.has(event)) pubsubMessages++;
  return emit.call(this, event, ...args);
};

// biome-ignore lint/suspicious/noUndeclaredEnvVars: set by the bench for its own servers, no turbo task reads it.
const file = process.env.BENCH_PROBE_FILE;
if (file !== undefined) {
  // Full collections a little apart: V8 gives back the pages a collection emptied after it has
  // swept them (concurrently), so one collection alone leaves the heap's high-water mark in RSS.
  const settleGc = async () => {
    for (let i = 0; i < GC_ROUNDS; i++) {
      (globalThis as { gc?: () => void }).gc?.();
      await new Promise((resolve) => setTimeout(resolve, GC_PAUSE_MS));
    }
  };
  process.on("SIGUSR2", () => {
    void settleGc().then(() => {
      // Written aside then renamed: the bench never reads half a file.
      writeFileSync(`${file}.tmp`, JSON.stringify({ ...process.memoryUsage(), pubsubMessages }));
      renameSync(`${file}.tmp`, file);
    });
  });
}

// biome-ignore lint/suspicious/noUndeclaredEnvVars: set by the bench for its own servers, no turbo task reads it.
const phaseDir = process.env.BENCH_PHASE_DIR;
if (phaseDir !== undefined) {
  const session = new Session();
  session.connect();
  let phases = 0;
  process.on("SIGTTIN", () => {
    void (async () => {
      await session.post("Profiler.enable");
      await session.post("Profiler.setSamplingInterval", { interval: 100 });
      await session.post("Profiler.start");
      // The bench starts its phase once it sees this.
      writeFileSync(`${phaseDir}/${process.pid}.profiling`, "");
    })();
  });
  process.on("SIGTTOU", () => {
    void session.post("Profiler.stop").then(({ profile }) => {
      const path = `${phaseDir}/${process.pid}-${++phases}.cpuprofile`;
      writeFileSync(`${path}.tmp`, JSON.stringify(profile));
      renameSync(`${path}.tmp`, path);
      rmSync(`${phaseDir}/${process.pid}.profiling`, { force: true });
    });
  });
}
