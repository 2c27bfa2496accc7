/**
 * Memory per idle socket against two baselines, in one run: bare Socket.IO (no
 * auth, no adapter: Socket.IO's own floor), plain Socket.IO (the cookie-session
 * recipe with the Redis adapter) and Tether at its defaults (a session per user,
 * `tabs` sockets each). Per system, a fresh instance: warm-up, `sockets / 2`
 * sockets, memory after a full GC, the second half, memory again; the heap's
 * difference over the second half's sockets is the cost of one more idle socket
 * (what the process holds whatever the count is cancels out). RSS is taken from
 * 0 sockets to all of them (it moves in steps). The clients' idle keep-alive HTTP
 * connections are closed before each reading (the server would after its
 * keep-alive timeout): what is measured is the sockets. Rounds alternate the order.
 */
import { type Bench, closeSockets, dropHttp, ensureLogins, inOrder, openSockets, specsFor } from "./context.js";
import { type ServerKind, startBare, startInstance } from "./instances.js";
import { settle } from "./proc-stats.js";

export interface MemoryOptions {
  sockets: number;
  tabs: number;
  concurrency: number;
  rounds: number;
  /** Which servers (default: all three). */
  systems?: ServerKind[];
}

export interface MemoryResult {
  system: ServerKind;
  sockets: number;
  /** V8 heap used + external, per socket of the second half, after a full GC. */
  heapKiB: number;
  /**
   * Resident set size per socket, from 0 sockets (after the warm-up) to all of them: over the
   * whole count, as RSS moves in steps (V8 commits and gives back heap pages by its own rules).
   */
  rssKiB: number;
  /** V8's committed heap (heapTotal + external) per socket, 0 → all: the RSS that is heap pages, used or not. */
  heapTotalKiB: number;
  /** Server RSS at `sockets`, MiB. */
  rssMiBAtFull: number;
}

const WARMUP_USERS = 25;

async function memoryOnce(bench: Bench, system: ServerKind, options: MemoryOptions): Promise<MemoryResult> {
  const instance =
    system === "bare"
      ? await startBare({ name: "bare-1" })
      : await startInstance(system, bench.redis[system], { name: `${system}-1` });
  const users = Math.ceil(options.sockets / options.tabs);
  const half = Math.floor(users / 2);
  const pids = system === "bare" ? [instance.pid] : [instance.pid, bench.redis[system].pid() ?? 0];
  try {
    if (system !== "bare") await ensureLogins(bench, system, instance.url, users);
    const target = { kind: system, url: instance.url };
    await openSockets(bench, target, specsFor(bench, system, 0, WARMUP_USERS, options.tabs), 10);
    await closeSockets(bench, pids);
    await dropHttp(bench);
    await settle(pids, { windowMs: 300, maxMs: 10_000 });
    const zero = await instance.probe();
    const first = await openSockets(bench, target, specsFor(bench, system, 0, half, options.tabs), options.concurrency);
    await dropHttp(bench);
    await settle(pids, { windowMs: 300, maxMs: 10_000 });
    const before = await instance.probe();
    const second = await openSockets(
      bench,
      target,
      specsFor(bench, system, half, users, options.tabs),
      options.concurrency,
    );
    await dropHttp(bench);
    await settle(pids, { windowMs: 300, maxMs: 10_000 });
    const after = await instance.probe();
    const kib = (pick: (m: NodeJS.MemoryUsage) => number) => (pick(after) - pick(before)) / 1024 / second.opened;
    await closeSockets(bench, pids);
    return {
      system,
      sockets: users * options.tabs,
      heapKiB: kib((m) => m.heapUsed + m.external),
      rssKiB: (after.rss - zero.rss) / 1024 / (first.opened + second.opened),
      heapTotalKiB:
        (after.heapTotal + after.external - zero.heapTotal - zero.external) / 1024 / (first.opened + second.opened),
      rssMiBAtFull: after.rss / 2 ** 20,
    };
  } finally {
    await instance.stop();
  }
}

/** `rounds` measurements per system, the order rotating each round. */
export async function runMemory(bench: Bench, options: MemoryOptions): Promise<MemoryResult[]> {
  const results: MemoryResult[] = [];
  for (let round = 0; round < options.rounds; round++) {
    for (const system of inOrder<ServerKind>(options.systems ?? ["bare", "plain", "tether"], round)) {
      bench.progress(`memory ${round + 1}/${options.rounds}, ${system}: ${options.sockets} idle sockets`);
      results.push(await memoryOnce(bench, system, options));
    }
  }
  return results;
}
