/**
 * How many connections one instance can hold, from what its machine allows: the
 * process's file-descriptor limit and a memory budget. `loadConfig` reads the machine
 * once (`readMachine`) and turns it into caps (`resolveCapacity`); an explicit setting wins.
 */
import { readFileSync } from "node:fs";
import { getHeapStatistics } from "node:v8";

/** Where the fd limit is read when the platform has no `/proc` (the cap the constant gave before). */
export const FALLBACK_FD_LIMIT = 10_240;
/** Descriptors kept for everything but client connections: Redis, the agent, logs, libuv, DNS. */
export const FD_RESERVE = 128;
/**
 * Memory budgeted per connected socket: an idle socket measured 13.8 KiB of heap and
 * 17–19 KiB of RSS here (BENCHMARKS.md), doubled for the buffers of a socket that receives.
 */
export const BYTES_PER_SOCKET = 40 * 1024;
/** Share of the heap limit (or of the cgroup's memory, if lower) sockets may take by default. */
export const MEMORY_SHARE = 0.5;
/** Keep-alive HTTP connections: this share of the connection cap, within these bounds. */
const KEEP_ALIVE_SHARE = 0.05;
const KEEP_ALIVE_BOUNDS = { min: 16, max: 1_000 } as const;
/** Past the connection cap, this share of it (at least 16) is still accepted to be answered 503. */
export const HEADROOM_RATIO = 0.02;
export const MIN_HEADROOM = 16;
/** An fd soft limit below this gets a warning at start. */
export const LOW_FD_LIMIT = 4_096;

/** What the machine allows this process. */
export interface Machine {
  /** The soft limit on open files; undefined where it cannot be read. */
  fdLimit: number | undefined;
  /** The hard limit the soft one may be raised to (undefined: unknown). */
  fdHardLimit: number | undefined;
  /** V8's heap limit, in bytes. */
  heapLimitBytes: number;
  /** The cgroup's memory limit in bytes; undefined when there is none or it cannot be read. */
  cgroupMemoryBytes: number | undefined;
}

/** The caps an operator may set; unset ones are derived. */
export interface CapacitySettings {
  /** `TETHER_MAX_SOCKETS`: Socket.IO connections. */
  maxSockets?: number;
  /** `TETHER_HTTP_MAX_CONNECTIONS`: open connections, WebSockets included. */
  maxConnections?: number;
  /** `TETHER_HTTP_MAX_KEEP_ALIVE_CONNECTIONS`: open HTTP connections not upgraded to WebSocket. */
  maxKeepAliveConnections?: number;
  /** `TETHER_MEMORY_BUDGET`: bytes the sockets may take. */
  memoryBudgetBytes?: number;
}

/** The caps in force, and why. */
export interface Capacity {
  /** Socket.IO connections; past it, handshakes get UNAVAILABLE with `retryAfterMs`. */
  sockets: number;
  /** Open connections, WebSockets included; past it, 503 + Retry-After. */
  connections: number;
  /** Open HTTP connections not upgraded; past it, their requests get 503 + Retry-After. */
  keepAlive: number;
  /** What bounds `sockets`: "setting", "file descriptors" or "memory". */
  boundBy: "setting" | "file descriptors" | "memory";
  /** One line for the start log: the caps and where each came from. */
  reason: string;
  /** Set when the fd limit is low: what it costs and how to raise it. */
  warning?: string;
}

/** The first number on the "Max open files" line of `/proc/self/limits` (soft, hard); "unlimited" is Infinity. */
export function parseFdLimits(text: string): { soft: number; hard: number } | undefined {
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!match) return undefined;
  const read = (value = "") => (value === "unlimited" ? Number.POSITIVE_INFINITY : Number(value));
  const soft = read(match[1]);
  const hard = read(match[2]);
  return Number.isNaN(soft) || Number.isNaN(hard) ? undefined : { soft, hard };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** The cgroup (v2, else v1) memory limit in bytes; "max" or a v1 "no limit" value is undefined. */
function cgroupMemory(): number | undefined {
  for (const path of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    const value = Number(readText(path)?.trim());
    // cgroup v1 reports "no limit" as a page-rounded 2^63.
    if (Number.isFinite(value) && value > 0 && value < 2 ** 60) return value;
  }
  return undefined;
}

/** Reads this process's limits (Linux `/proc` and cgroups; elsewhere the fd limit is unknown). */
export function readMachine(): Machine {
  const limits = readText("/proc/self/limits");
  const fd = limits === undefined ? undefined : parseFdLimits(limits);
  return {
    fdLimit: fd?.soft,
    fdHardLimit: fd?.hard,
    heapLimitBytes: getHeapStatistics().heap_size_limit,
    cgroupMemoryBytes: cgroupMemory(),
  };
}

/** The connection cap whose hard ceiling (`cap` + headroom) fits in `descriptors`. */
function capWithin(descriptors: number): number {
  return Math.max(1, Math.min(Math.floor(descriptors / (1 + HEADROOM_RATIO)), descriptors - MIN_HEADROOM));
}

const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;

/**
 * The caps for a machine: an explicit setting wins; otherwise the connection cap is what
 * the fd soft limit leaves after `FD_RESERVE` and the 503 headroom, keep-alive HTTP gets a
 * share of it, and sockets the rest, or what the memory budget pays for at
 * `BYTES_PER_SOCKET`, whichever is lower.
 */
export function resolveCapacity(machine: Machine, settings: CapacitySettings = {}): Capacity {
  // "unlimited" is read as a million: the memory budget bounds it long before.
  const fdLimit = machine.fdLimit === undefined ? FALLBACK_FD_LIMIT : Math.min(machine.fdLimit, 1_000_000);
  const fdSource =
    machine.fdLimit === undefined ? `no fd limit readable, assumed ${FALLBACK_FD_LIMIT}` : `fd limit ${fdLimit}`;
  const connections = settings.maxConnections ?? capWithin(Math.max(1, fdLimit - FD_RESERVE));
  const keepAlive =
    settings.maxKeepAliveConnections ??
    Math.min(KEEP_ALIVE_BOUNDS.max, Math.max(KEEP_ALIVE_BOUNDS.min, Math.floor(connections * KEEP_ALIVE_SHARE)));
  const memoryLimit = Math.min(machine.heapLimitBytes, machine.cgroupMemoryBytes ?? Number.POSITIVE_INFINITY);
  const budget = settings.memoryBudgetBytes ?? Math.floor(memoryLimit * MEMORY_SHARE);
  const byFds = Math.max(1, connections - Math.min(keepAlive, connections - 1));
  const byMemory = Math.max(1, Math.floor(budget / BYTES_PER_SOCKET));
  const sockets = settings.maxSockets ?? Math.min(byFds, byMemory);
  const boundBy = settings.maxSockets !== undefined ? "setting" : byFds <= byMemory ? "file descriptors" : "memory";
  const budgetSource =
    settings.memoryBudgetBytes !== undefined
      ? "TETHER_MEMORY_BUDGET"
      : `${MEMORY_SHARE * 100}% of the ${machine.cgroupMemoryBytes !== undefined && machine.cgroupMemoryBytes < machine.heapLimitBytes ? "cgroup memory limit" : "V8 heap limit"}`;
  const reason = [
    `sockets ${sockets} (${boundBy === "setting" ? "TETHER_MAX_SOCKETS" : `by ${boundBy}`}: ${fdSource} → ${byFds}; memory budget ${mib(budget)}, ${budgetSource} → ${byMemory} at ${BYTES_PER_SOCKET / 1024} KiB each)`,
    `connections ${connections}${settings.maxConnections !== undefined ? " (TETHER_HTTP_MAX_CONNECTIONS)" : ""}`,
    `keep-alive HTTP ${keepAlive}${settings.maxKeepAliveConnections !== undefined ? " (TETHER_HTTP_MAX_KEEP_ALIVE_CONNECTIONS)" : ""}`,
  ].join(", ");
  const low = machine.fdLimit !== undefined && fdLimit < LOW_FD_LIMIT && settings.maxConnections === undefined;
  const raise =
    machine.fdHardLimit !== undefined && machine.fdHardLimit > fdLimit
      ? `the hard limit allows ${machine.fdHardLimit === Number.POSITIVE_INFINITY ? "unlimited" : machine.fdHardLimit}: \`ulimit -n ${Math.min(machine.fdHardLimit, 65_536)}\` before start`
      : "`ulimit -n 65536` before start (or LimitNOFILE= in systemd, --ulimit nofile=65536:65536 in Docker, nofile in /etc/security/limits.conf)";
  return {
    sockets,
    connections,
    keepAlive,
    boundBy,
    reason,
    ...(low
      ? {
          warning: `the file-descriptor limit is ${fdLimit}: this instance holds at most ${connections} connections (${sockets} sockets); raise it with ${raise}`,
        }
      : {}),
  };
}
