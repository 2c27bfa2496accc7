/**
 * `npm run chaos -- --minutes N --seed S [--instances 3] [--faults a,b]`: a chaos soak. Prints
 * the seed, every fault with its time, the events checked and the verdict;
 * exits 1 on any violation. The same seed replays the same fault schedule.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LOG_DIR } from "../helpers/instance.js";
import { summarize } from "./checker.js";
import { FAULT_KINDS, type FaultKind } from "./faults.js";
import { runChaos } from "./run.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "2" },
    seed: { type: "string" },
    instances: { type: "string", default: "3" },
    sockets: { type: "string", default: "2" },
    faults: { type: "string" },
  },
});
const kinds = values.faults?.split(",") as FaultKind[] | undefined;
if (kinds?.some((kind) => !FAULT_KINDS.includes(kind))) {
  process.stderr.write(`--faults takes a comma list of: ${FAULT_KINDS.join(", ")}\n`);
  process.exit(2);
}
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const minutes = Number(values.minutes);
if (!Number.isInteger(seed) || !(minutes > 0)) {
  process.stderr.write(
    "usage: npm run chaos -- --minutes N --seed S [--instances 2|3] [--sockets K] [--faults kind,…]\n",
  );
  process.exit(2);
}
const log = (line: string) => process.stdout.write(`${line}\n`);
log(`chaos: seed ${seed}, ${minutes} min of faults, ${values.instances} instances (replay: --seed ${seed})`);
const result = await runChaos({
  seed,
  faultPhaseMs: minutes * 60_000,
  instances: Number(values.instances),
  socketsPerUser: Number(values.sockets),
  kinds,
  log,
});
const { verdict } = result;
log(
  `checked: ${result.publishes.total} publishes (${result.publishes.acked} acked), ${verdict.deliveries} deliveries, ` +
    `${verdict.obligations} (client, acked publish) obligations, ${verdict.covered} covered by recovered:false`,
);
log(summarize(verdict.violations));
for (const { violation, faults } of result.blame.slice(0, 20))
  log(`  ${violation}\n    near: ${faults.join(", ") || "no fault"}`);
mkdirSync(LOG_DIR, { recursive: true });
const historyFile = join(LOG_DIR, `chaos-${seed}.json`);
writeFileSync(historyFile, JSON.stringify({ faults: result.faults, ...result.history }));
log(`history: ${historyFile}; instance logs: ${LOG_DIR}/chaos-s${seed}-*.log`);
log(
  `verdict (seed ${seed}): ${verdict.violations.length === 0 ? "PASS" : `FAIL, ${verdict.violations.length} violations`}`,
);
process.exit(verdict.violations.length === 0 ? 0 : 1);
