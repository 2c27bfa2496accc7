import { describe, expect, it } from "vitest";
import { summarize } from "./checker.js";
import { type ChaosResult, runChaos } from "./run.js";

/**
 * The short chaos run of `npm test`: two instances, real Redis (AOF, with a
 * replica for failover), a link per instance, faults from a seed. One fixed
 * seed, and one random seed (or CHAOS_SEED) that is printed so it can replay:
 * `npm run chaos -- --minutes 0.3 --seed S --instances 2`.
 */
const FIXED_SEED = 1;
const randomSeed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

function report(result: ChaosResult): string {
  const faults = result.faults.map((f) => `  t=${f.at} ms ${f.description}${f.note ? ` (${f.note})` : ""}`);
  const blame = result.blame
    .slice(0, 10)
    .map((b) => `  ${b.violation}\n    near: ${b.faults.join(", ") || "no fault"}`);
  return [
    `seed ${result.seed} (replay: npm run chaos -- --minutes 0.3 --seed ${result.seed} --instances 2)`,
    "faults:",
    ...faults,
    `${result.publishes.total} publishes (${result.publishes.acked} acked), ${result.verdict.deliveries} deliveries checked`,
    summarize(result.verdict.violations),
    ...blame,
  ].join("\n");
}

describe("chaos: the guarantee under random faults", () => {
  for (const seed of [FIXED_SEED, randomSeed]) {
    it(`holds for seed ${seed}`, { timeout: 120_000 }, async () => {
      const result = await runChaos({ seed, faultPhaseMs: 18_000, instances: 2, socketsPerUser: 2 });
      process.stdout.write(`chaos ${report(result)}\n`);
      expect(result.verdict.obligations).toBeGreaterThan(0);
      expect(result.verdict.violations, report(result)).toEqual([]);
    });
  }
});
