/**
 * CPU time of any process, read from /proc (Linux), so the same measurement
 * applies to Node servers and to redis-server alike; and a Node server's
 * memory after a full GC, through bench/probe.ts.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { waitFor } from "@tether/testkit/wait";

function clockTicksPerSecond(): number {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** Milliseconds per tick of /proc's CPU counters (usually 10). */
export const TICK_MS = 1000 / clockTicksPerSecond();

/** User + system CPU time of a process (every thread), in ms. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

/** Starts measuring a process: the returned function gives the CPU ms it used since. */
export function cpuMeter(pid: number): () => number {
  const before = cpuMs(pid);
  return () => cpuMs(pid) - before;
}

/** Write system calls a process made (every thread), from /proc/<pid>/io: each socket write is one. */
function writeCalls(pid: number): number {
  return Number(/^syscw: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1] ?? Number.NaN);
}

/**
 * Starts counting a process's write system calls: the returned function gives those made since.
 * On loopback a write also carries the receiver's TCP work, so each frame sent costs the sender.
 */
export function writeMeter(pid: number): () => number {
  const before = writeCalls(pid);
  return () => writeCalls(pid) - before;
}

/**
 * Starts measuring the whole machine: the returned function gives the CPU ms every
 * process used since (non-idle time of all cores, /proc/stat), whoever they are.
 */
export function machineCpuMeter(): () => number {
  const busy = () => {
    const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    return (user + nice + system + irq + softirq + steal) * TICK_MS;
  };
  const before = busy();
  return () => busy() - before;
}

/**
 * Waits until these processes are quiet (at most one tick of CPU in `windowMs`),
 * so one measurement's tail (closing sockets, GC) does not land in the next.
 * Gives up quietly after `maxMs`: a busy machine must not stall the bench.
 */
export async function settle(pids: number[], { windowMs = 200, maxMs = 5_000 } = {}): Promise<void> {
  const total = () => pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
  const deadline = Date.now() + maxMs;
  let last = total();
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const now = total();
    if (now - last <= TICK_MS) return;
    last = now;
  }
}

/**
 * Memory of a Node server preloaded with bench/probe.ts, right after a full GC:
 * SIGUSR2 asks for it, the answer lands in `file`.
 */
export async function memoryAfterGc(pid: number, file: string): Promise<NodeJS.MemoryUsage> {
  rmSync(file, { force: true });
  process.kill(pid, "SIGUSR2");
  await waitFor(`memory probe of pid ${pid}`, () => existsSync(file), { timeoutMs: 10_000, intervalMs: 20 });
  return JSON.parse(readFileSync(file, "utf8")) as NodeJS.MemoryUsage;
}
