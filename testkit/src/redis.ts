import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "./ports.js";
import { waitFor } from "./wait.js";

/** A real redis-server on a free port, for one test file (or one bench run). */
export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** Its data directory (removed by `close`). */
  readonly dir: string;
  /** The running server's process id (undefined while stopped). */
  pid(): number | undefined;
  /** A plain client for assertions and fault injection. */
  client(): Redis;
  /**
   * A MONITOR connection (its `monitor` events are every command Redis runs). Its errors are
   * never unhandled: on a busy Redis its first lines may be misread (ioredis's "Command queue
   * state error"), and ioredis's own `monitor()` attaches the listener only once connected.
   */
  monitor(): Promise<Redis>;
  /** Stops the server (SIGTERM, or SIGKILL with `{ kill: true }`). */
  stop(options?: { kill?: boolean }): Promise<void>;
  /** Starts it again on the same port (and, with persistence on, the same data). */
  start(): Promise<void>;
  /** Stops it for good and removes its data. */
  close(): Promise<void>;
}

export interface RedisOptions {
  /** Append-only file, fsynced on every write: a restart keeps every key. */
  persistence?: boolean;
  /** Extra redis-server arguments, after the defaults (they win): `--enable-debug-command local`, `--replicaof`… */
  args?: string[];
  /** How the process is spawned (the bench passes its own, which ends every child when it exits). */
  spawn?: (command: string, args: string[], options: SpawnOptions) => ChildProcess;
}

/** Attempts at a first start: a port picked free may be taken before redis-server binds it. */
const FIRST_START_ATTEMPTS = 3;

export async function startRedis(options: RedisOptions = {}): Promise<TestRedis> {
  let port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "tether-redis-"));
  const clients: Redis[] = [];
  let child: ChildProcess | undefined;
  const portArgs = () => ["--port", String(port)];
  const args = [
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    options.persistence ? "yes" : "no",
    "--appendfsync",
    "always",
    "--loglevel",
    "warning",
    ...(options.args ?? []),
  ];

  const start = async () => {
    const proc = (options.spawn ?? spawn)("redis-server", [...portArgs(), ...args], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    child = proc;
    const probe = new Redis(port, "127.0.0.1", {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on("error", () => {});
    // A server that exits (its port taken, a bad argument) fails the start at once, not at the deadline.
    let exited: ((code: number | null) => void) | undefined;
    const exit = new Promise<never>((_, reject) => {
      exited = (code) => reject(new Error(`redis-server on port ${port} exited with ${code}`));
      proc.once("exit", exited);
    });
    try {
      await Promise.race([
        exit,
        waitFor(`redis-server on port ${port}`, async () => {
          if (proc.exitCode !== null) return true; // the race has lost already: stop polling
          if (probe.status !== "ready") await probe.connect().catch(() => undefined);
          return (await probe.ping()) === "PONG";
        }),
      ]);
    } finally {
      if (exited) proc.off("exit", exited);
      exit.catch(() => undefined);
      probe.disconnect();
    }
  };

  const stop = async ({ kill = false } = {}) => {
    const proc = child;
    // Gone already (killed with a signal: its exitCode stays null) — its exit event has fired.
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill(kill ? "SIGKILL" : "SIGTERM");
    await exited;
  };

  // The port was free a moment ago; another process (a test's server, an outgoing connection's
  // ephemeral port on a busy box) may have bound it since: redis-server then exits at once, and
  // the first start takes another port. Any other failure repeats and is thrown by the last try.
  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      break;
    } catch (err) {
      const exitedEarly = child?.exitCode !== null && child?.exitCode !== undefined;
      if (!exitedEarly || attempt >= FIRST_START_ATTEMPTS) throw err;
      port = await freePort();
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    pid: () => (child?.exitCode === null && child.signalCode === null ? child.pid : undefined),
    client() {
      const client = new Redis(port, "127.0.0.1");
      client.on("error", () => {});
      clients.push(client);
      return client;
    },
    async monitor() {
      const monitor = new Redis(port, "127.0.0.1", { monitor: true });
      monitor.on("error", () => {});
      clients.push(monitor);
      await new Promise<void>((resolve) => monitor.once("monitoring", () => resolve()));
      return monitor;
    },
    stop,
    start,
    async close() {
      for (const client of clients) client.disconnect();
      await stop({ kill: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
