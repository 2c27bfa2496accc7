/**
 * Preloaded into every server the bench starts (`node --expose-gc --import bench/probe.ts`),
 * the server's own code untouched:
 * - on SIGUSR2, a full GC, then `process.memoryUsage()` and the counters below are
 *   written to the file named by BENCH_PROBE_FILE (memory is compared after a full
 *   collection, not at whatever point the collector happened to be);
 * - pub/sub messages received by the process's ioredis connections (message, pmessage,
 *   smessage), counted the same way for plain Socket.IO's adapter and for Tether.
 */
import { renameSync, writeFileSync } from "node:fs";
import { Redis } from "ioredis";

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
  process.on("SIGUSR2", () => {
    (globalThis as { gc?: () => void }).gc?.();
    // Written aside then renamed: the bench never reads half a file.
    writeFileSync(`${file}.tmp`, JSON.stringify({ ...process.memoryUsage(), pubsubMessages }));
    renameSync(`${file}.tmp`, file);
  });
}
