/**
 * Preloaded into both servers by the bench (`node --expose-gc --import bench/probe.ts`),
 * the server's own code untouched: on SIGUSR2, a full GC, then `process.memoryUsage()`
 * written to the file named by BENCH_PROBE_FILE. Memory is then compared after a
 * full collection, not at whatever point the collector happened to be.
 */
import { renameSync, writeFileSync } from "node:fs";

// biome-ignore lint/suspicious/noUndeclaredEnvVars: set by the bench for its own servers, no turbo task reads it.
const file = process.env.BENCH_PROBE_FILE;
if (file !== undefined) {
  process.on("SIGUSR2", () => {
    (globalThis as { gc?: () => void }).gc?.();
    // Written aside then renamed: the bench never reads half a file.
    writeFileSync(`${file}.tmp`, JSON.stringify(process.memoryUsage()));
    renameSync(`${file}.tmp`, file);
  });
}
