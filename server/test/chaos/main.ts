/**
 * `npm run chaos -- --minutes N --seed S [--instances 3] [--faults a,b] [--topology standalone|cluster]
 * [--quiet-ms 10000] [--call-deadline-ms 35000] [--min-acked 0.999] [--max-duplicates 0]`: a chaos soak.
 * Prints the seed, every fault with its time, the calls and events checked and the verdict; exits 1
 * on any violation, on a freeze that did not drop the subscriber, or when the target (calls
 * acknowledged, duplicates) is missed. The same seed replays the same topology and fault schedule.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LOG_DIR } from "@tether/testkit/instance";
import { STANDARD_TARGET, summarize } from "./checker.js";
import { FAULT_KINDS, type FaultKind, KINDS_OF, topologyOf } from "./faults.js";
import { report, runChaos } from "./run.js";
import { TOPOLOGY_KINDS, type TopologyKind } from "./topology.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "2" },
    seed: { type: "string" },
    instances: { type: "string", default: "3" },
    sockets: { type: "string", default: "2" },
    faults: { type: "string" },
    topology: { type: "string" },
    "quiet-ms": { type: "string" },
    "call-deadline-ms": { type: "string" },
    "min-acked": { type: "string", default: String(STANDARD_TARGET.minAcked) },
    "max-duplicates": { type: "string", default: String(STANDARD_TARGET.maxDuplicates) },
  },
});
const fail = (message: string): never => {
  process.stderr.write(`${message}\n`);
  process.exit(2);
};
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const minutes = Number(values.minutes);
if (!Number.isInteger(seed) || !(minutes > 0))
  fail(
    "usage: npm run chaos -- --minutes N --seed S [--instances 2|3] [--sockets K] [--faults kind,…] [--topology standalone|cluster]",
  );
if (values.topology !== undefined && !TOPOLOGY_KINDS.includes(values.topology as TopologyKind))
  fail(`--topology takes one of: ${TOPOLOGY_KINDS.join(", ")}`);
const topology = (values.topology as TopologyKind | undefined) ?? topologyOf(seed);
const kinds = values.faults?.split(",") as FaultKind[] | undefined;
if (kinds?.some((kind) => !FAULT_KINDS.includes(kind)))
  fail(`--faults takes a comma list of: ${FAULT_KINDS.join(", ")}`);
if (kinds?.some((kind) => !KINDS_OF[topology].includes(kind)))
  fail(`on the ${topology} topology --faults takes: ${KINDS_OF[topology].join(", ")}`);
const optionalNumber = (value: string | undefined) => (value === undefined ? undefined : Number(value));
const target = { minAcked: Number(values["min-acked"]), maxDuplicates: Number(values["max-duplicates"]) };

const log = (line: string) => process.stdout.write(`${line}\n`);
log(
  `chaos: seed ${seed}, ${minutes} min of faults, ${values.instances} instances, ${topology} (replay: --seed ${seed})`,
);
const result = await runChaos({
  seed,
  faultPhaseMs: minutes * 60_000,
  instances: Number(values.instances),
  socketsPerUser: Number(values.sockets),
  kinds,
  topology,
  quietMs: optionalNumber(values["quiet-ms"]),
  callDeadlineMs: optionalNumber(values["call-deadline-ms"]),
  log,
});
log(summarize(result.verdict.violations));
for (const { violation, faults } of result.blame.slice(0, 20))
  log(`  ${violation}\n    near: ${faults.join(", ") || "no fault"}`);
mkdirSync(LOG_DIR, { recursive: true });
const historyFile = join(LOG_DIR, `chaos-${seed}.json`);
writeFileSync(historyFile, JSON.stringify({ faults: result.faults, ...result.history }));
log(`history: ${historyFile}; instance logs: ${LOG_DIR}/chaos-s${seed}-*.log`);
const { lines, pass } = report(result, target);
for (const line of lines) log(line);
process.exit(pass ? 0 : 1);
