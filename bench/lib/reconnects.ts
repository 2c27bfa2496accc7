/**
 * Server CPU per connect and per reconnect, plain against Tether, on one instance each:
 * `sockets` sockets are opened, then every one is closed by its client and connected again.
 * - plain: the same cookie handshake both times (Socket.IO's express-session recipe);
 * - tether+ticket, what the SDK does in a browser: a first connect signed in by the session
 *   cookie on the upgrade, a reconnect with the resume ticket `welcome` or `ticket` gave it;
 * - tether+token, a client that keeps no cookie for the socket (Node, a host's `getToken`):
 *   a token request, then the handshake, every time.
 * Server CPU from /proc over each phase, per socket; the reconnect phase includes the disconnects,
 * and is measured on the second reconnect of every socket (the first warms the process up).
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
  /** The server's write system calls per first connect. */
  connectWrites: number;
  reconnects: number;
  reconnectCpuMs: number;
  /** The server's write system calls per reconnect (frames, Redis commands, the upgrade's response). */
  reconnectWrites: number;
  reconnectFailed: number;
  firstError: string | undefined;
}

/** Every client worker closes its held sockets (of `kind`, in `slice`) and connects them again, `concurrency` in flight in all. */
function reconnectHeld(
  bench: Bench,
  concurrency: number,
  kind?: "plain" | "tether",
  slice?: { index: number; of: number },
) {
  const lanes = Math.max(1, Math.round(concurrency / bench.workers.length));
  return Promise.all(bench.workers.map((w) => w.request("reconnect", { concurrency: lanes, kind, slice })));
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
    const [connectCpu, connectWrites] = [cpuMeter(instance.pid), writeMeter(instance.pid)];
    const opened = await openSockets(
      bench,
      target,
      specsFor(bench, system, 0, users, options.tabs),
      options.concurrency,
      mode,
    );
    const [connectCpuMs, firstWrites] = [connectCpu(), connectWrites()];
    await settle(pids, { windowMs: 300, maxMs: 10_000 });
    // A first round, unmeasured (as in the interleaved run): a storm meets a warm process. Plain's
    // reconnect is its connect, warm by now; Tether's ticket path would run for the first time in the window.
    await reconnectHeld(bench, options.concurrency);
    await settle(pids, { windowMs: 300, maxMs: 10_000 });
    const profile = await profilePhase(bench, instance.pid);
    const [reconnectCpu, reconnectWrites] = [cpuMeter(instance.pid), writeMeter(instance.pid)];
    const again = await reconnectHeld(bench, options.concurrency);
    const [reconnectCpuMs, writes] = [reconnectCpu(), reconnectWrites()];
    await profile?.stop();
    const reconnects = again.reduce((sum, r) => sum + r.opened, 0);
    await closeSockets(bench, pids);
    return {
      variant,
      connects: opened.opened,
      connectCpuMs: connectCpuMs / Math.max(1, opened.opened),
      connectWrites: firstWrites / Math.max(1, opened.opened),
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

/** How long each server's idle rate is read before the turns. */
const IDLE_WINDOW_MS = 5_000;

export interface InterleavedResult {
  reconnects: { plain: number; tether: number };
  /** Server CPU per reconnect: each server's CPU over the whole interleaved window, its idle spells included. */
  cpuMs: { plain: number; tether: number };
  /**
   * The same less what each server spends holding its sockets with nothing happening (its idle
   * rate, read over a few seconds before the turns, times the window): the reconnects' own cost.
   */
  cpuAboveIdleMs: { plain: number; tether: number };
  /** Each server's CPU ms per second while it only holds its sockets. */
  idleMsPerSecond: { plain: number; tether: number };
  /** Tether ÷ plain in each turn pair, the turns alone, in order (their spread is the measurement's). */
  turnRatios: number[];
  failed: number;
}

/**
 * Server CPU per ticket reconnect against a plain one, measured in turns: both servers hold
 * their sockets at once, and a slice of one's sockets reconnects, then a slice of the other's,
 * alternating which goes first, `turns` times. Each turn is about a second, so whatever else
 * loads the box loads both alike: the ratio, not each figure, is what this measures steadily
 * (one variant after the other, as above, puts ±20 % of the box's drift into the ratio).
 */
export async function runInterleavedReconnects(
  bench: Bench,
  options: ReconnectOptions & { turns: number },
): Promise<InterleavedResult> {
  const users = Math.ceil(options.sockets / options.tabs);
  const plain = await startInstance("plain", bench.redis.plain, { name: "plain-i", nodeFlags: bench.nodeFlags });
  const tether = await startInstance("tether", bench.redis.tether, { name: "tether-i", nodeFlags: bench.nodeFlags });
  const pids = [plain.pid, tether.pid, bench.redis.plain.pid() ?? 0, bench.redis.tether.pid() ?? 0];
  try {
    await ensureLogins(bench, "plain", plain.url, users);
    await ensureLogins(bench, "tether", tether.url, users);
    const browser = { reconnect: false, tickets: true, cookie: true };
    await openSockets(bench, { kind: "plain", url: plain.url }, specsFor(bench, "plain", 0, users, options.tabs), 32);
    await openSockets(
      bench,
      { kind: "tether", url: tether.url },
      specsFor(bench, "tether", 0, users, options.tabs),
      32,
      browser,
    );
    // A first round each, unmeasured: every socket holds a ticket, and both servers' code is warm.
    const reconnectAll = (kind: "plain" | "tether", slice?: { index: number; of: number }) =>
      reconnectHeld(bench, options.concurrency, kind, slice);
    await reconnectAll("plain");
    await reconnectAll("tether");
    const result: InterleavedResult = {
      reconnects: { plain: 0, tether: 0 },
      cpuMs: { plain: 0, tether: 0 },
      cpuAboveIdleMs: { plain: 0, tether: 0 },
      idleMsPerSecond: { plain: 0, tether: 0 },
      turnRatios: [],
      failed: 0,
    };
    // Each server's CPU over the whole window, its idle spells included: the collector's work on a
    // turn's garbage may run while the other server has its turn, and it is the turn's cost.
    await settle(pids, { windowMs: 200, maxMs: 5_000 });
    // What each server costs holding its sockets alone (heartbeats, timers), both at once.
    const idle = { plain: cpuMeter(plain.pid), tether: cpuMeter(tether.pid) };
    await new Promise((resolve) => setTimeout(resolve, IDLE_WINDOW_MS));
    result.idleMsPerSecond = {
      plain: idle.plain() / (IDLE_WINDOW_MS / 1000),
      tether: idle.tether() / (IDLE_WINDOW_MS / 1000),
    };
    const windowStarted = performance.now();
    const whole = { plain: cpuMeter(plain.pid), tether: cpuMeter(tether.pid) };
    for (let turn = 0; turn < options.turns; turn++) {
      const perReconnect = { plain: 0, tether: 0 };
      for (const kind of inOrder<"plain" | "tether">(["plain", "tether"], turn)) {
        const instance = kind === "plain" ? plain : tether;
        await settle(pids, { windowMs: 200, maxMs: 5_000 });
        const cpu = cpuMeter(instance.pid);
        const done = await reconnectAll(kind, { index: turn, of: options.turns });
        const used = cpu();
        const count = done.reduce((sum, r) => sum + r.opened, 0);
        result.failed += done.reduce((sum, r) => sum + r.failed, 0);
        result.reconnects[kind] += count;
        perReconnect[kind] = used / Math.max(1, count);
      }
      result.turnRatios.push(perReconnect.tether / Math.max(1e-9, perReconnect.plain));
    }
    await settle(pids, { windowMs: 300, maxMs: 10_000 });
    const windowSeconds = (performance.now() - windowStarted) / 1000;
    for (const kind of ["plain", "tether"] as const) {
      const used = whole[kind]();
      const count = Math.max(1, result.reconnects[kind]);
      result.cpuMs[kind] = used / count;
      result.cpuAboveIdleMs[kind] = (used - result.idleMsPerSecond[kind] * windowSeconds) / count;
    }
    await closeSockets(bench, pids);
    return result;
  } finally {
    await Promise.all([plain.stop(), tether.stop()]);
  }
}
