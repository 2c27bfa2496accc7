/**
 * Server CPU per connect and per reconnect, plain against Tether, on one instance each:
 * `sockets` sockets are opened, then every one is closed by its client and connected again.
 * - plain: the same cookie handshake both times (Socket.IO's express-session recipe);
 * - tether+ticket, what the SDK does in a browser: a first connect signed in by the session
 *   cookie on the upgrade, a reconnect with the resume ticket `welcome` or `ticket` gave it;
 * - tether+token, a client that keeps no cookie for the socket (Node, a host's `getToken`):
 *   a token request, then the handshake, every time.
 * Server CPU from /proc over each phase, per socket; the reconnect phase includes the disconnects.
 * With `--phase-prof`, a CPU profile of each server over the reconnect phase alone.
 */
import { type Bench, closeSockets, ensureLogins, inOrder, openSockets, specsFor } from "./context.js";
import { type SystemName, startInstance } from "./instances.js";
import { profilePhase } from "./phase-profile.js";
import { cpuMeter, settle, writeMeter } from "./proc-stats.js";

export type ReconnectVariant = "plain" | "tether+ticket" | "tether+token";

export interface ReconnectOptions {
  sockets: number;
  tabs: number;
  concurrency: number;
  rounds: number;
  /** The variants to run (all three by default). */
  variants?: ReconnectVariant[];
}

export interface ReconnectResult {
  variant: ReconnectVariant;
  connects: number;
  connectCpuMs: number;
  reconnects: number;
  reconnectCpuMs: number;
  /** The server's write system calls per reconnect (frames, Redis commands, the upgrade's response). */
  reconnectWrites: number;
  reconnectFailed: number;
  firstError: string | undefined;
}

async function reconnectOnce(bench: Bench, variant: ReconnectVariant, options: ReconnectOptions) {
  const system: SystemName = variant === "plain" ? "plain" : "tether";
  const redis = bench.redis[system];
  const instance = await startInstance(system, redis, { name: `${system}-1`, nodeFlags: bench.nodeFlags });
  const pids = [instance.pid, redis.pid() ?? 0];
  try {
    const users = Math.ceil(options.sockets / options.tabs);
    await ensureLogins(bench, system, instance.url, users);
    const target = { kind: system, url: instance.url };
    const browser = variant === "tether+ticket";
    const mode = { reconnect: false, tickets: browser, cookie: browser };
    await openSockets(bench, target, specsFor(bench, system, 0, 25, options.tabs), 10, mode);
    await closeSockets(bench, pids);
    const connectCpu = cpuMeter(instance.pid);
    const opened = await openSockets(
      bench,
      target,
      specsFor(bench, system, 0, users, options.tabs),
      options.concurrency,
      mode,
    );
    const connectCpuMs = connectCpu();
    await settle(pids, { windowMs: 300, maxMs: 10_000 });
    const profile = await profilePhase(bench, instance.pid);
    const [reconnectCpu, reconnectWrites] = [cpuMeter(instance.pid), writeMeter(instance.pid)];
    const lanes = Math.max(1, Math.round(options.concurrency / bench.workers.length));
    const again = await Promise.all(bench.workers.map((w) => w.request("reconnect", { concurrency: lanes })));
    const [reconnectCpuMs, writes] = [reconnectCpu(), reconnectWrites()];
    await profile?.stop();
    const reconnects = again.reduce((sum, r) => sum + r.opened, 0);
    await closeSockets(bench, pids);
    return {
      variant,
      connects: opened.opened,
      connectCpuMs: connectCpuMs / Math.max(1, opened.opened),
      reconnects,
      reconnectCpuMs: reconnectCpuMs / Math.max(1, reconnects),
      reconnectWrites: writes / Math.max(1, reconnects),
      reconnectFailed: again.reduce((sum, r) => sum + r.failed, 0),
      firstError: again.find((r) => r.firstError)?.firstError,
    };
  } finally {
    await instance.stop();
  }
}

export async function runReconnects(bench: Bench, options: ReconnectOptions): Promise<ReconnectResult[]> {
  const results: ReconnectResult[] = [];
  for (let round = 0; round < options.rounds; round++) {
    for (const variant of inOrder<ReconnectVariant>(
      options.variants ?? ["plain", "tether+ticket", "tether+token"],
      round,
    )) {
      bench.progress(`reconnects ${round + 1}/${options.rounds}, ${variant}: ${options.sockets} sockets`);
      results.push(await reconnectOnce(bench, variant, options));
    }
  }
  return results;
}
