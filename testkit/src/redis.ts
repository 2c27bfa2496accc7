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

export async function startRedis(options: RedisOptions = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "tether-redis-"));
  const clients: Redis[] = [];
  let child: ChildProcess | undefined;
  const args = [
    "--port",
    String(port),
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
    const proc = (options.spawn ?? spawn)("redis-server", args, { stdio: ["ignore", "ignore", "inherit"] });
    child = proc;
    const probe = new Redis(port, "127.0.0.1", {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on("error", () => {});
    await waitFor(`redis-server on port ${port}`, async () => {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
      if (probe.status !== "ready") await probe.connect().catch(() => undefined);
      return (await probe.ping()) === "PONG";
    });
    probe.disconnect();
  };

  const stop = async ({ kill = false } = {}) => {
    const proc = child;
    // Gone already (killed with a signal: its exitCode stays null) — its exit event has fired.
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill(kill ? "SIGKILL" : "SIGTERM");
    await exited;
  };

  await start();
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
    stop,
    start,
    async close() {
      for (const client of clients) client.disconnect();
      await stop({ kill: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
