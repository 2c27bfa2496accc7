/**
 * What a publish costs with each durability setting: sequential publishes from
 * a worker (`createPublisher`, an id per call), against the plain design's
 * PUBLISH through one Redis round trip, in the same run.
 */

import { createPublisher, loadConfig } from "@tether/server";
import { waitFor } from "@tether/testkit/wait";
import { Redis } from "ioredis";
import type { Bench } from "./context.js";
import { startBenchRedis } from "./redis.js";

export interface PublishLatency {
  setting: string;
  /** What an acknowledged publish survives with it. */
  survives: string;
  p50Ms: number;
  p99Ms: number;
}

const PAYLOAD = { text: "x".repeat(200) };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

async function timed(count: number, call: (i: number) => Promise<unknown>): Promise<{ p50Ms: number; p99Ms: number }> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await call(i);
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  return { p50Ms: percentile(samples, 0.5), p99Ms: percentile(samples, 0.99) };
}

/** Plain PUBLISH, then Tether with TETHER_PUBLISH_REPLICAS 0 and 1, and on an `appendfsync always` Redis. */
export async function runPublishLatency(bench: Bench, count: number): Promise<PublishLatency[]> {
  const primary = await startBenchRedis();
  const replica = await startBenchRedis(["--replicaof", "127.0.0.1", String(primary.port)]);
  const fsynced = await startBenchRedis(["--appendonly", "yes", "--appendfsync", "always"]);
  const rows: PublishLatency[] = [];
  try {
    const probe = new Redis(replica.url);
    await waitFor("the replica in sync", async () => /master_link_status:up/.test(await probe.info("replication")), {
      timeoutMs: 30_000,
    });
    probe.disconnect();
    const plain = new Redis(primary.url);
    bench.progress("publish: plain PUBLISH");
    rows.push({
      setting: "plain Socket.IO (PUBLISH)",
      survives: "nothing (pub/sub is at most once)",
      ...(await timed(count, () => plain.publish("bench", JSON.stringify(PAYLOAD)))),
    });
    plain.disconnect();
    for (const [setting, url, env, survives] of [
      ["tether, TETHER_PUBLISH_REPLICAS=0", primary.url, {}, "an instance or worker crash"],
      [
        "tether, TETHER_PUBLISH_REPLICAS=1",
        primary.url,
        { TETHER_PUBLISH_REPLICAS: "1" },
        "+ a primary crash (a confirmed replica promoted)",
      ],
      ["tether, Redis appendfsync always", fsynced.url, {}, "+ a Redis restart (no lost last second)"],
    ] as const) {
      bench.progress(`publish: ${setting}`);
      const publisher = await createPublisher(loadConfig({ REDIS_URL: url, LOG_LEVEL: "silent", ...env }));
      try {
        rows.push({
          setting,
          survives,
          ...(await timed(count, (i) => publisher.publish({ user: `u${i % 50}` }, "bench", PAYLOAD))),
        });
      } finally {
        await publisher.close();
      }
    }
  } finally {
    await Promise.all([replica.close(), fsynced.close(), primary.close()]);
  }
  return rows;
}

/** The table: each setting's latency, and its ratio to the plain PUBLISH. */
export function publishTable(rows: PublishLatency[]): string {
  const plain = rows[0];
  const lines = [
    "| setting | survives | p50 ms | p99 ms | p50 ratio to plain |",
    "|---|---|---|---|---|",
    ...rows.map(
      (row) =>
        `| ${row.setting} | ${row.survives} | ${row.p50Ms.toFixed(3)} | ${row.p99Ms.toFixed(3)} | ${
          plain ? `${(row.p50Ms / plain.p50Ms).toFixed(2)}x` : "—"
        } |`,
    ),
  ];
  return lines.join("\n");
}
