/** The redis-server each system runs against: the test kit's, on a free port, ended with the bench. */
import { rmSync } from "node:fs";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { Redis } from "ioredis";
import { onExit, spawnTracked } from "./procs.js";

/**
 * A throwaway redis-server, no persistence, client limit raised for 10k-socket runs. `extra`
 * arguments are added last (they win): e.g. `--replicaof`, or `--appendonly yes --appendfsync always`.
 */
export async function startBenchRedis(extra: string[] = []): Promise<TestRedis> {
  const redis = await startRedis({ args: ["--maxclients", "10000", ...extra], spawn: spawnTracked });
  onExit(() => rmSync(redis.dir, { recursive: true, force: true }));
  return redis;
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
