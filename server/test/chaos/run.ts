import { randomBytes } from "node:crypto";
import { waitFor } from "@tether/testkit/wait";
import {
  loginAs,
  now,
  type RecordingClient,
  resetClock,
  StreamPublisher,
  startRecordingClient,
  userStreamOf,
} from "./actors.js";
import {
  check,
  type History,
  type PublishRecord,
  STANDARD_TARGET,
  type Target,
  targetMet,
  type Verdict,
} from "./checker.js";
import {
  describeFault,
  type FaultContext,
  type FaultKind,
  type FaultSpec,
  inject,
  quietStream,
  schedule,
  topologyOf,
} from "./faults.js";
import { startTopology, type TopologyKind } from "./topology.js";

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
  /** Standalone (a primary and a replica) or a Redis Cluster; by default the seed chooses. */
  topology?: TopologyKind;
  /**
   * How long some streams stay silent after each fault (ms): longer than it takes
   * to detect a dead subscription, so a lost last event is judged before the next
   * publish reveals (and hides) it.
   */
  quietMs?: number;
  /** How long one publish call is retried (same id) before it is given up and counted as failed (ms). */
  callDeadlineMs?: number;
  log?: (line: string) => void;
}

/** Detection of a dead subscription takes up to a probe interval (5 s by default) and then some. */
export const DEFAULT_QUIET_MS = 10_000;
/** Past the publishers' own deadline (TETHER_PUBLISH_DEADLINE, 30 s by default): their retries come first. */
export const DEFAULT_CALL_DEADLINE_MS = 35_000;

export interface FaultRun {
  spec: FaultSpec;
  description: string;
  /** When it started and ended, ms since the run started. */
  at: number;
  end: number;
  note: string;
  /** For a freeze: whether Redis dropped a subscriber for its output buffer. */
  dropped?: boolean;
  /** The streams kept quiet after it. */
  quiet: string[];
}

export interface ChaosResult {
  seed: number;
  topology: TopologyKind;
  faults: FaultRun[];
  verdict: Verdict;
  publishes: { total: number; acked: number };
  /** Faults by kind, in schedule order of first appearance. */
  faultsByKind: Record<string, number>;
  /** Freezes, and how many of them made Redis drop the subscriber. */
  freezes: { total: number; dropped: number };
  /** Violations with the faults that were under way or had just ended (within 5 s) when they happened. */
  blame: { violation: string; faults: string[] }[];
  /** The whole recorded history, for a closer look at a failure. */
  history: History;
}

const PAD_BYTES = 256;
const BURST_PAD_BYTES = 12_000;

/** A stream's fan-out channel (server/src/store/history-redis.ts): instances with a socket of it listen. */
const channelOf = (stream: string) => `tether:ev:{${stream}}`;
const BALLAST_BYTES = 64 * 1024;
/** Bound on one freeze's ballast: the kernel buffers on both hops (Redis → link → instance) hold several MB. */
const BALLAST_MAX_BYTES = 160 * 1024 * 1024;
/** How often a freeze asks Redis whether the subscriber is gone yet. */
const DROP_POLL_MS = 250;

/**
 * Other traffic on the channels of streams the clients are in (it is not an
 * event: instances ignore it), as the load under which Redis drops a subscriber
 * that stopped reading (kernel socket buffers alone hold megabytes, more than
 * one burst of real events fills in a few seconds on this machine). Sent until
 * `done()` says the subscriber was dropped, or `maxMs`, or the byte bound.
 */
async function ballast(
  spublish: (channel: string, message: string) => Promise<unknown>,
  maxMs: number,
  done: () => Promise<boolean>,
): Promise<boolean> {
  const message = JSON.stringify({ ballast: "x".repeat(BALLAST_BYTES) });
  const channels = [...Object.keys(USERS).map((user) => channelOf(userStreamOf(user))), channelOf("room:firehose")];
  const until = now() + maxMs;
  let polled = now();
  for (let sent = 0; now() < until && sent < BALLAST_MAX_BYTES; sent += message.length * channels.length) {
    await Promise.all(channels.map((channel) => spublish(channel, message).catch(() => 0)));
    if (now() - polled >= DROP_POLL_MS) {
      polled = now();
      if (await done().catch(() => false)) return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return done().catch(() => false);
}

/**
 * One chaos run: starts the topology, logs each user in once, connects the
 * clients, publishes to every stream while the seeded faults are injected one
 * after the other, heals, lets every client settle, and checks the history.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? (() => {});
  const instances = options.instances ?? 2;
  const kind = options.topology ?? topologyOf(options.seed);
  const quietMs = options.quietMs ?? DEFAULT_QUIET_MS;
  const plan = schedule(options.seed, {
    faultPhaseMs: options.faultPhaseMs,
    instances,
    kinds: options.kinds,
    topology: kind,
  });
  const runId = `s${options.seed}-${randomBytes(2).toString("hex")}`;
  log(`topology: ${kind}`);
  const crashes: NonNullable<History["crashes"]> = [];
  const topology = await startTopology({
    kind,
    instances,
    onCrash: (crash) => {
      crashes.push({ t: now(), instance: crash.instance, detail: crash.detail });
      log(
        `t=${Math.round(now())} ms  CRASH: ${crash.instance} exited (${crash.code ?? crash.signal}): ${crash.detail}; restarted`,
      );
    },
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
  let entries: History["entries"];
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
    const deadline = options.callDeadlineMs ?? DEFAULT_CALL_DEADLINE_MS;
    // The burst is for a frozen instance's subscriber: it publishes through the others.
    const awakeUrls = () => topology.instances.filter((instance) => !instance.paused).map((instance) => instance.url);
    for (const stream of streams)
      publishers.push(
        new StreamPublisher(
          stream,
          stream === "room:firehose" ? awakeUrls : instanceUrls,
          publishes,
          i++,
          deadline,
          runId,
        ),
      );
    const firehose = publishers.find((p) => p.stream === "room:firehose");
    const steady = publishers.filter((p) => p !== firehose);
    const running = steady.map((p) => p.run(options.publishIntervalMs ?? 100, PAD_BYTES));
    // Events through the whole freeze; ballast on top until Redis drops the subscriber.
    const burst: FaultContext["burst"] = async ({ minMs, maxMs, done }) => {
      let dropped = false;
      const until = now() + minMs;
      await Promise.all([
        (async () => {
          while (firehose && (now() < until || (!dropped && now() < until + maxMs)))
            await firehose.publishOne(BURST_PAD_BYTES);
        })(),
        ballast((channel, message) => topology.spublish(channel, message), maxMs, done).then((gone) => {
          dropped = true; // done either way: stop the events at minMs
          return gone;
        }),
        new Promise((resolve) => setTimeout(resolve, minMs)),
      ]);
    };

    let index = 0;
    for (const spec of plan) {
      const description = describeFault(spec);
      const at = rel(now());
      log(`t=${at} ms  fault: ${description}`);
      const clientsOn = (name: string) => clients.filter((c) => c.instance === name).length;
      const outcome = await inject(spec, { topology, burst, clientsOn }).catch((err: Error) => ({
        note: `fault failed: ${err.message}`,
        dropped: spec.kind === "pause-instance" ? false : undefined,
      }));
      const end = rel(now());
      // After the fault, a stream stays silent past the detection time: its last events are judged.
      const quietOne = quietStream(
        options.seed,
        index++,
        steady.filter((p) => !p.isQuiet).map((p) => p.stream),
      );
      for (const p of steady) if (p.stream === quietOne) p.quiet(quietMs + 1_500);
      const quiet = quietOne === undefined ? [] : [quietOne];
      faults.push({ spec, description, at, end, note: outcome.note, dropped: outcome.dropped, quiet });
      if (outcome.note) log(`t=${end} ms    ${outcome.note}`);
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
    // The end is judged here, once: a socket lost after it (this process starved past the
    // chaos ping timeout of 500 ms while the streams are read and the run torn down, on a
    // loaded box) is the harness's, not the system's, and has no time left to come back.
    for (const c of clients) c.judgeEnd();
    // What the streams hold: two entries of one call is a duplicate even if no client saw both.
    entries = await topology.readEntries(streams).catch((err: Error) => {
      log(`could not read the streams: ${err.message}`);
      return undefined;
    });
  } finally {
    for (const c of clients) c.close();
    await topology.close();
  }

  const history: History = { publishes, clients: clients.map((c) => c.record), entries, crashes };
  const verdict = check(history, { quietMs });
  const blame = verdict.violations.map((v) => {
    const t = rel(v.t);
    const near = faults.filter((f) => f.at - 500 <= t && t <= f.end + 5_000).map((f) => `${f.spec.kind}@${f.at}`);
    return {
      violation: `${v.kind} ${v.client}${v.stream ? ` ${v.stream}` : ""}${v.seq === undefined ? "" : ` #${v.seq}`} t=${t}: ${v.detail}`,
      faults: near,
    };
  });
  const faultsByKind: Record<string, number> = {};
  for (const f of faults) faultsByKind[f.spec.kind] = (faultsByKind[f.spec.kind] ?? 0) + 1;
  const freezes = faults.filter((f) => f.spec.kind === "pause-instance");
  return {
    seed: options.seed,
    topology: kind,
    faultsByKind,
    freezes: { total: freezes.length, dropped: freezes.filter((f) => f.dropped).length },
    faults,
    verdict,
    publishes: { total: publishes.length, acked: publishes.filter((p) => p.acked).length },
    blame,
    history,
  };
}

/**
 * The run's summary and its pass/fail: no violation, every freeze dropped its
 * subscriber (or the fault did not test what it is for), and the target met.
 */
export function report(result: ChaosResult, target: Target = STANDARD_TARGET): { lines: string[]; pass: boolean } {
  const { verdict } = result;
  const goal = targetMet(verdict, target);
  const freezesOk = result.freezes.dropped === result.freezes.total;
  const pass = verdict.violations.length === 0 && freezesOk && goal.met;
  const byKind = Object.entries(result.faultsByKind)
    .map(([kind, count]) => `${kind} ${count}`)
    .join(", ");
  const share = verdict.calls === 0 ? 100 : (verdict.acked / verdict.calls) * 100;
  const counts = new Map<string, number>();
  for (const v of verdict.violations) counts.set(v.kind, (counts.get(v.kind) ?? 0) + 1);
  const lines = [
    `summary (seed ${result.seed}, ${result.topology}):`,
    `  faults: ${result.faults.length} (${byKind || "none"})`,
    `  freezes that dropped the subscriber: ${result.freezes.dropped} of ${result.freezes.total}${freezesOk ? "" : "  ← a freeze that did not drop"}`,
    ...result.faults
      .filter((f) => f.spec.kind === "pause-instance")
      .map((f) => `    t=${f.at} ms: ${f.dropped ? "dropped" : "NOT dropped"} (${f.note})`),
    `  publish calls: ${verdict.calls}; acknowledged: ${verdict.acked} (${share.toFixed(2)} %); failed after the deadline: ${verdict.failed}`,
    `  delivered: ${verdict.deliveries}; obligations (client, acked call): ${verdict.obligations}; duplicates: ${verdict.duplicates}`,
    `  recovered:false: ${verdict.notRecovered} (covering ${verdict.covered} obligations); quiet gaps judged: ${verdict.quietGaps}`,
    `  violations: ${verdict.violations.length}${counts.size ? ` (${[...counts].map(([k, n]) => `${k} ${n}`).join(", ")})` : ""}`,
    `  target: ${goal.met ? "MET" : "NOT MET"}: ${goal.detail}`,
    `verdict (seed ${result.seed}): ${pass ? "PASS" : "FAIL"}`,
  ];
  return { lines, pass };
}
