/** The redis-server Tether runs against: the bench's own, on a free port. */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "../../server/test/helpers/ports.js";
import { waitFor } from "../../server/test/helpers/wait.js";
import { onExit, spawnTracked, whileAlive } from "./procs.js";

export interface BenchRedis {
  url: string;
  child: ChildProcess;
}

/** PING until redis-server answers PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("error", () => done(false));
    socket.once("data", (data) => {
      socket.destroy();
      done(data.toString().startsWith("+PONG"));
    });
    socket.write("PING\r\n");
  });
}

/**
 * A throwaway redis-server on a free port, no persistence, client limit raised for 10k-socket runs.
 * `args` are added last (they win): e.g. `--replicaof`, or `--appendonly yes --appendfsync always`.
 */
export async function startRedis(extra: string[] = []): Promise<BenchRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "tether-bench-redis-"));
  onExit(() => rmSync(dir, { recursive: true, force: true }));
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
    "no",
    "--maxclients",
    "10000",
  ];
  const child = spawnTracked("redis-server", [...args, ...extra, "--loglevel", "warning"], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  await whileAlive(
    child,
    "redis-server",
    waitFor(`redis-server on port ${port}`, () => ping(port)),
  );
  return { url: `redis://127.0.0.1:${port}`, child };
}

/** What the bench reads from a Redis between two moments: command counts and client read events. */
export interface RedisCounters {
  /** Commands executed (INFO commandstats, summed). */
  commands: number;
  /** Per command. */
  byCommand: Record<string, number>;
  /** Read events on client connections (INFO stats total_reads_processed): a round trip is at least one. */
  reads: number;
}

/** A plain RESP connection for reading INFO (one round trip per call). */
export class RedisProbe {
  private readonly redis: Redis;

  constructor(url: string) {
    this.redis = new Redis(url, { lazyConnect: false, enableAutoPipelining: false });
  }

  async counters(): Promise<RedisCounters> {
    const text = await this.redis.info("all");
    const byCommand: Record<string, number> = {};
    let commands = 0;
    for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      const calls = Number(match[2]);
      byCommand[match[1] ?? ""] = calls;
      commands += calls;
    }
    const reads = Number(/^total_reads_processed:(\d+)/m.exec(text)?.[1] ?? Number.NaN);
    return { commands, byCommand, reads };
  }

  close(): void {
    this.redis.disconnect();
  }
}

/** `after - before`, per field. The INFO call that read `after` counts as one command and one read. */
export function delta(before: RedisCounters, after: RedisCounters): RedisCounters {
  const byCommand: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after.byCommand)) {
    const diff = calls - (before.byCommand[name] ?? 0);
    if (diff > 0 && name !== "info") byCommand[name] = diff;
  }
  return { commands: after.commands - before.commands - 1, byCommand, reads: after.reads - before.reads - 1 };
}
