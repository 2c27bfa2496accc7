/** The whole measurement: warm-up, memory once, then alternating rounds of connects and fan-out; then the rows. */
import { median, type Row } from "./report.js";
import { type CpuPer, measureConnects, measureFanOut, measureIdleMemory, type Worker, warmUp } from "./scenarios.js";
import type { System } from "./systems.js";

export interface SuiteOptions {
  connects: number;
  concurrency: number;
  rounds: number;
  events: number;
  idleSockets: number;
  warmup: number;
}

type Name = System["name"];

/** Sockets opened before the idle-memory measurement starts (see measureIdleMemory). */
const prefillOf = (options: SuiteOptions) => Math.ceil(options.idleSockets / 4);

/** The most sockets held at once in the run, for sizing Tether's session pool. */
export const mostSockets = (options: SuiteOptions) =>
  Math.max(options.connects, options.warmup, prefillOf(options) + options.idleSockets);
type Connects = Awaited<ReturnType<typeof measureConnects>>;
type FanOut = Awaited<ReturnType<typeof measureFanOut>>;
type Memory = Awaited<ReturnType<typeof measureIdleMemory>>;

/** Every measurement, by system: the rounds' raw figures (they go to the JSON as they are). */
export interface Measured {
  connects: Record<Name, Connects[]>;
  fanOut: Record<Name, FanOut[]>;
  memory: Partial<Record<Name, Memory>>;
}

/**
 * Runs every scenario on both systems. Memory is measured once, first (later
 * runs would reuse heap the earlier ones grew); connects and fan-out run in
 * rounds whose order alternates, so drift of a noisy machine hits both alike.
 */
export async function runSuite(
  systems: System[],
  workers: Worker[],
  options: SuiteOptions,
  progress: (text: string) => void,
): Promise<Measured> {
  const measured: Measured = { connects: { plain: [], tether: [] }, fanOut: { plain: [], tether: [] }, memory: {} };
  for (const system of systems) await warmUp(system, workers, options.warmup);
  for (const system of systems) {
    const prefill = prefillOf(options);
    progress(`${system.name}: ${prefill} + ${options.idleSockets} idle sockets`);
    measured.memory[system.name] = await measureIdleMemory(system, workers, prefill, options.idleSockets);
  }
  for (let round = 0; round < options.rounds; round++) {
    for (const system of round % 2 === 0 ? systems : [...systems].reverse()) {
      progress(`round ${round + 1}/${options.rounds}, ${system.name}: connects, fan-out`);
      measured.connects[system.name].push(
        await measureConnects(system, workers, options.connects, options.concurrency),
      );
      measured.fanOut[system.name].push(await measureFanOut(system, workers[0]!, options.events));
    }
  }
  return measured;
}

const total = (cpu: CpuPer) => cpu.server + (cpu.redis ?? 0);

/** What the table's starred rows mean. */
export const NOTES = [
  "fan-out: plain = socket.emit in process; Tether = createPublisher().publish: each event is appended to a capped",
  "  Redis Stream (history for recovery) and fanned out through Redis pub/sub to the instance, which emits it.",
  "heap = V8 heap used + external, after a full GC; per socket = least-squares slope over the idle-socket steps.",
  "* RSS per socket follows allocator and GC history (V8 commits and releases heap in MB steps) more than",
  "  sockets at this scale; read the heap row for per-socket cost, the RSS MiB row for the footprint.",
];

/** The table's rows: medians over the rounds. */
export function rowsOf(measured: Measured, options: SuiteOptions): Row[] {
  const med = <T>(rounds: Record<Name, T[]>, pick: (m: T) => number | undefined) => ({
    plain: median(rounds.plain.map(pick)),
    tether: median(rounds.tether.map(pick)),
  });
  const { connects, fanOut, memory } = measured;
  return [
    {
      metric: `connects/s (${options.connects}, ${options.concurrency} at once)`,
      ...med(connects, (m) => m.perSecond),
      better: "higher",
    },
    { metric: "server CPU ms per connect", ...med(connects, (m) => m.cpuMsPerConnect.server), better: "lower" },
    { metric: "  Redis CPU ms per connect", ...med(connects, (m) => m.cpuMsPerConnect.redis), better: undefined },
    { metric: "  server+Redis CPU ms per connect", ...med(connects, (m) => total(m.cpuMsPerConnect)), better: "lower" },
    {
      metric: `fan-out events/s (${options.events} to 1 client)`,
      ...med(fanOut, (m) => m.perSecond),
      better: "higher",
    },
    { metric: "server CPU ms per 1k events", ...med(fanOut, (m) => m.cpuMsPerThousand.server), better: "lower" },
    { metric: "  Redis CPU ms per 1k events", ...med(fanOut, (m) => m.cpuMsPerThousand.redis), better: undefined },
    {
      metric: "  server+Redis CPU ms per 1k events",
      ...med(fanOut, (m) => total(m.cpuMsPerThousand)),
      better: "lower",
    },
    {
      metric: `server heap KiB per idle socket (${prefillOf(options)}→${prefillOf(options) + options.idleSockets})`,
      plain: memory.plain?.heapKiBPerSocket,
      tether: memory.tether?.heapKiBPerSocket,
      better: "lower",
    },
    {
      metric: "  server RSS KiB per idle socket (noisy*)",
      plain: memory.plain?.rssKiBPerSocket,
      tether: memory.tether?.rssKiBPerSocket,
      better: undefined,
    },
    {
      metric: `server RSS MiB, ${prefillOf(options) + options.idleSockets} idle sockets`,
      plain: memory.plain?.rssMiB,
      tether: memory.tether?.rssMiB,
      better: "lower",
    },
  ];
}
