import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { waitFor } from "../helpers/wait.js";
import {
  loginAs,
  now,
  type RecordingClient,
  resetClock,
  StreamPublisher,
  startRecordingClient,
  userStreamOf,
} from "./actors.js";
import { check, type History, type PublishRecord, type Verdict } from "./checker.js";
import { describeFault, type FaultKind, type FaultSpec, inject, schedule } from "./faults.js";
import { startTopology } from "./topology.js";

/** Who is in which room: every user has its own stream, and rooms are shared. `firehose` carries the bursts. */
export const USERS: Record<string, string[]> = {
  alice: ["lobby", "ops", "firehose"],
  bob: ["lobby", "firehose"],
  carol: ["ops", "firehose"],
};

export interface ChaosOptions {
  seed: number;
  /** Length of the phase with faults (ms); the quiet period comes after. */
  faultPhaseMs: number;
  instances?: number;
  /** Sockets (tabs) per user, all on the user's one session. */
  socketsPerUser?: number;
  /** Pause between two publishes of one stream (ms). */
  publishIntervalMs?: number;
  kinds?: readonly FaultKind[];
  log?: (line: string) => void;
}

export interface FaultRun {
  spec: FaultSpec;
  description: string;
  /** When it started and ended, ms since the run started. */
  at: number;
  end: number;
  note: string;
}

export interface ChaosResult {
  seed: number;
  faults: FaultRun[];
  verdict: Verdict;
  publishes: { total: number; acked: number };
  /** Violations with the faults that were under way or had just ended (within 5 s) when they happened. */
  blame: { violation: string; faults: string[] }[];
  /** The whole recorded history, for a closer look at a failure. */
  history: History;
}

const PAD_BYTES = 256;
const BURST_PAD_BYTES = 12_000;

/** The channel every instance hears appended events on (server/src/store/history-redis.ts). */
const EVENTS_CHANNEL = "tether:events";
const BALLAST_BYTES = 64 * 1024;
const BALLAST_MAX_BYTES = 24 * 1024 * 1024;

/**
 * Other users' traffic on the shared events channel, for a stream no client
 * is in: the load under which Redis drops a subscriber that stopped reading
 * (kernel socket buffers alone hold megabytes, more than one burst of real
 * events fills in a few seconds on this machine).
 */
async function ballast(admin: Redis, ms: number): Promise<void> {
  const message = JSON.stringify([
    "user:chaos-ballast",
    "0-1",
    "ballast",
    JSON.stringify({ pad: "x".repeat(BALLAST_BYTES) }),
  ]);
  const until = now() + ms / 2;
  for (let sent = 0; now() < until && sent < BALLAST_MAX_BYTES; sent += message.length * 8) {
    await Promise.all(Array.from({ length: 8 }, () => admin.publish(EVENTS_CHANNEL, message).catch(() => 0)));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * One chaos run: starts the topology, logs each user in once, connects the
 * clients, publishes to every stream while the seeded faults are injected one
 * after the other, heals, lets every client settle, and checks the history.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? (() => {});
  const instances = options.instances ?? 2;
  const plan = schedule(options.seed, { faultPhaseMs: options.faultPhaseMs, instances, kinds: options.kinds });
  const runId = `s${options.seed}-${randomBytes(2).toString("hex")}`;
  const topology = await startTopology({
    instances,
    runId,
    env: {
      TETHER_RECOVERY_WINDOW: "1h",
      TETHER_SESSION_SECRET: randomBytes(32).toString("hex"),
      CHAOS_ROOMS: JSON.stringify(USERS),
    },
  });
  resetClock();
  const rel = (t: number) => Math.round(t);
  const publishes: PublishRecord[] = [];
  const clients: RecordingClient[] = [];
  const publishers: StreamPublisher[] = [];
  const faults: FaultRun[] = [];
  const instanceUrls = () => topology.instances.map((instance) => instance.url);
  try {
    for (const [user, rooms] of Object.entries(USERS)) {
      const cookie = await loginAs(topology.lb.url, user);
      for (let i = 0; i < (options.socketsPerUser ?? 2); i++)
        clients.push(startRecordingClient({ id: `${user}#${i}`, baseUrl: topology.lb.url, user, rooms, cookie }));
    }
    await waitFor("every client to connect", () => clients.every((c) => c.connected), { timeoutMs: 20_000 });
    log(`clients connected: ${clients.length} on ${instances} instances (t=${rel(now())} ms)`);

    const streams = [
      ...Object.keys(USERS).map(userStreamOf),
      ...[...new Set(Object.values(USERS).flat())].map((room) => `room:${room}`),
    ];
    let i = 0;
    for (const stream of streams) publishers.push(new StreamPublisher(stream, instanceUrls, publishes, i++));
    const firehose = publishers.find((p) => p.stream === "room:firehose");
    const steady = publishers.filter((p) => p !== firehose);
    const running = steady.map((p) => p.run(options.publishIntervalMs ?? 100, PAD_BYTES));
    const burst = async (ms: number) => {
      const until = now() + ms;
      await Promise.all([
        (async () => {
          while (firehose && now() < until) await firehose.publishOne(BURST_PAD_BYTES);
        })(),
        ballast(topology.primary.admin, ms),
      ]);
    };

    for (const spec of plan) {
      const description = describeFault(spec);
      const at = rel(now());
      log(`t=${at} ms  fault: ${description}`);
      const note = await inject(spec, { topology, burst }).catch((err: Error) => `fault failed: ${err.message}`);
      const end = rel(now());
      faults.push({ spec, description, at, end, note });
      if (note) log(`t=${end} ms    ${note}`);
      await new Promise((resolve) => setTimeout(resolve, spec.gapMs));
    }

    // Quiet period: everything healed; publish a little more, stop, and let every client settle.
    log(`t=${rel(now())} ms  quiet period`);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    for (const p of publishers) p.stop();
    await Promise.all(running);
    const lastAcked = new Map<string, { seq: number; endedAt: number }>();
    for (const p of publishes) if (p.acked) lastAcked.set(p.stream, { seq: p.seq, endedAt: p.endedAt });
    const settled = (c: RecordingClient) =>
      c.connected &&
      c.record.streams.every((stream) => {
        const last = lastAcked.get(stream);
        return (
          !last ||
          (c.lastSeq.get(stream) ?? 0) >= last.seq ||
          (c.lastNotRecovered.get(stream) ?? Number.NEGATIVE_INFINITY) >= last.endedAt
        );
      });
    await waitFor("every client to settle", () => clients.every(settled), { timeoutMs: 15_000 }).catch(() => {
      log(
        `t=${rel(now())} ms  not every client settled: ${clients.filter((c) => !settled(c)).map((c) => c.record.id)}`,
      );
    });
  } finally {
    for (const c of clients) c.close();
    await topology.close();
  }

  const history: History = { publishes, clients: clients.map((c) => c.record) };
  const verdict = check(history);
  const blame = verdict.violations.map((v) => {
    const t = rel(v.t);
    const near = faults.filter((f) => f.at - 500 <= t && t <= f.end + 5_000).map((f) => `${f.spec.kind}@${f.at}`);
    return {
      violation: `${v.kind} ${v.client}${v.stream ? ` ${v.stream}` : ""}${v.seq === undefined ? "" : ` #${v.seq}`} t=${t}: ${v.detail}`,
      faults: near,
    };
  });
  return {
    seed: options.seed,
    faults,
    verdict,
    publishes: { total: publishes.length, acked: publishes.filter((p) => p.acked).length },
    blame,
    history,
  };
}
