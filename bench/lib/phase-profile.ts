/**
 * `--phase-prof`: a CPU profile of one server over one phase of a scenario (bench/probe.ts
 * starts and stops V8's profiler on a signal), written to bench/results/profiles as
 * `<pid>-<n>.cpuprofile`; summarize it with bench/profile-top.ts.
 */
import { existsSync } from "node:fs";
import { waitFor } from "@tether/testkit/wait";
import type { Bench } from "./context.js";

/** Where the servers write their phase profiles; set before they start. */
export function phaseProfileDir(): string | undefined {
  // biome-ignore lint/suspicious/noUndeclaredEnvVars: set by the bench for its own servers, no turbo task reads it.
  return process.env.BENCH_PHASE_DIR;
}

const counts = new Map<number, number>();

/** Starts profiling `pid` (undefined without `--phase-prof`); `stop` waits for its profile's file. */
export async function profilePhase(bench: Bench, pid: number): Promise<{ stop: () => Promise<void> } | undefined> {
  const dir = phaseProfileDir();
  if (dir === undefined) return undefined;
  process.kill(pid, "SIGTTIN");
  await waitFor("the phase profile started", () => existsSync(`${dir}/${pid}.profiling`));
  return {
    stop: async () => {
      const n = (counts.get(pid) ?? 0) + 1;
      counts.set(pid, n);
      process.kill(pid, "SIGTTOU");
      const file = `${dir}/${pid}-${n}.cpuprofile`;
      await waitFor(`the phase profile ${file}`, () => existsSync(file), { timeoutMs: 30_000 });
      bench.progress(`phase profile: ${file}`);
    },
  };
}
