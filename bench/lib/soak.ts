/**
 * Churn soak: one Tether instance with `pool` sockets; every second the
 * `churn` oldest leave and as many new ones connect (fresh tokens), while the
 * publisher sends `rate` events per second across the users. Heap and RSS
 * after a full GC every `sampleSeconds`; they must stay flat.
 */
import { createPublisher, loadConfig } from "@tether/server";
import { addressOf, type Bench, closeSockets, counters, ensureLogins, openSockets } from "./context.js";
import { startInstance } from "./instances.js";
import type { ClientSpec } from "./protocol.js";
import { BENCH_EVENT, benchPayload } from "./protocol.js";

export interface SoakOptions {
  minutes: number;
  pool: number;
  churn: number;
  rate: number;
  users: number;
  sampleSeconds: number;
}

export interface SoakSample {
  seconds: number;
  heapMiB: number;
  rssMiB: number;
  connects: number;
  received: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runSoak(bench: Bench, options: SoakOptions): Promise<SoakSample[]> {
  const redis = bench.redis.tether;
  const instance = await startInstance("tether", redis, { name: "tether-soak", nodeFlags: bench.nodeFlags });
  const publisher = await createPublisher(loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "warn" }));
  const samples: SoakSample[] = [];
  try {
    await ensureLogins(bench, "tether", instance.url, options.users);
    const target = { kind: "tether" as const, url: instance.url };
    let next = 0;
    /** The next `count` tabs, users in turn, one batch per worker (a user's tabs stay in one worker). */
    const batch = (count: number): ClientSpec[][] => {
      const perWorker: ClientSpec[][] = bench.workers.map(() => []);
      for (let i = 0; i < count; i++, next++) {
        const user = next % options.users;
        const cookie = bench.cookies.tether[user] ?? "";
        perWorker[user % bench.workers.length]?.push({ user: `u${user}`, cookie, address: addressOf(user) });
      }
      return perWorker;
    };
    await openSockets(bench, target, batch(options.pool), 32);
    const started = performance.now();
    const end = started + options.minutes * 60_000;
    let connects = 0;
    let seq = 0;
    let nextSample = started;
    while (performance.now() < end) {
      const second = performance.now();
      if (second >= nextSample) {
        const probe = await instance.probe();
        const received = (await counters(bench)).received;
        const elapsed = Math.round((second - started) / 1000);
        samples.push({
          seconds: elapsed,
          heapMiB: (probe.heapUsed + probe.external) / 1024 / 1024,
          rssMiB: probe.rss / 1024 / 1024,
          connects,
          received,
        });
        bench.progress(
          `soak ${elapsed}s: heap ${samples.at(-1)?.heapMiB.toFixed(1)} MiB, rss ${samples.at(-1)?.rssMiB.toFixed(1)} MiB, ${connects} connects`,
        );
        nextSample += options.sampleSeconds * 1000;
      }
      // Leave: the oldest of each worker's share; join: as many new tabs.
      const share = Math.ceil(options.churn / bench.workers.length);
      await Promise.all(bench.workers.map((worker) => worker.request("close", { count: share })));
      const opened = await openSockets(bench, target, batch(share * bench.workers.length), 16);
      connects += opened.opened;
      const publishes = Array.from({ length: options.rate }, () => {
        const user = seq % options.users;
        return publisher.publish({ user: `u${user}` }, BENCH_EVENT, benchPayload(seq++));
      });
      await Promise.all(publishes);
      await sleep(Math.max(0, second + 1000 - performance.now()));
    }
    await closeSockets(bench, [instance.pid]);
  } finally {
    await publisher.close();
    await instance.stop();
  }
  return samples;
}
