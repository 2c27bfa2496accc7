import { describe, expect, it } from "vitest";
import type { Target } from "./checker.js";
import { KINDS_OF } from "./faults.js";
import { type ChaosResult, report, runChaos } from "./run.js";

/**
 * The short chaos run of `npm test`: two instances, real Redis (a primary with
 * AOF and a replica), faults from a seed, every kind of the standalone topology
 * (freezes that drop the subscriber included). One fixed seed, and one random
 * seed (or CHAOS_SEED) that is printed so it can replay:
 * `npm run chaos -- --minutes 0.25 --seed S --instances 2 --topology standalone`.
 * The Cluster topology (six nodes) runs in `npm run chaos -- --topology cluster`.
 */
const FIXED_SEED = 1;
const randomSeed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** The standard target: every call acknowledged within its deadline (at most 0.1 % not), no duplicate. */
const SHORT_RUN_TARGET: Target = { minAcked: 0.999, maxDuplicates: 0 };

function describeRun(result: ChaosResult): string {
  const faults = result.faults.map((f) => `  t=${f.at} ms ${f.description}${f.note ? ` (${f.note})` : ""}`);
  const blame = result.blame
    .slice(0, 10)
    .map((b) => `  ${b.violation}\n    near: ${b.faults.join(", ") || "no fault"}`);
  return [
    `seed ${result.seed} (replay: npm run chaos -- --minutes 0.25 --seed ${result.seed} --instances 2 --topology ${result.topology})`,
    "faults:",
    ...faults,
    ...report(result, SHORT_RUN_TARGET).lines,
    ...blame,
  ].join("\n");
}

describe("chaos: the guarantee under random faults", () => {
  for (const seed of [FIXED_SEED, randomSeed]) {
    const topology = "standalone";
    it(`holds for seed ${seed} (${topology})`, { timeout: 120_000 }, async () => {
      const result = await runChaos({
        seed,
        faultPhaseMs: 15_000,
        instances: 2,
        socketsPerUser: 2,
        topology,
        kinds: KINDS_OF[topology],
        // Past the short run's quiet gaps, well under its length: a call given up is reported.
        callDeadlineMs: 15_000,
      });
      const text = describeRun(result);
      process.stdout.write(`chaos ${text}\n`);
      expect(result.verdict.obligations).toBeGreaterThan(0);
      expect(result.verdict.violations, text).toEqual([]);
      expect(report(result, SHORT_RUN_TARGET).lines.join("\n"), text).toContain("target: MET");
    });
  }
});
