import { PUBSUB_BUFFER_LIMIT, replicaCaughtUp, type Topology } from "./topology.js";

/** A small seeded PRNG (mulberry32): the same seed gives the same schedule. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const FAULT_KINDS = [
  "kill-sub",
  "kill-commands",
  "cut-link",
  "pause-instance",
  "restart-redis",
  "pause-redis",
  "failover",
  "kill-instance",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** One planned fault: what, on which instance, for how long, and the quiet time after it. */
export interface FaultSpec {
  kind: FaultKind;
  /** Index of the instance it hits (ignored by Redis-wide faults). */
  instance: number;
  /** How long the fault lasts (ms). */
  ms: number;
  /** A uniform draw for choices within the fault (which connection, which way to pause). */
  pick: number;
  /** Quiet time before the next fault (ms). */
  gapMs: number;
}

/** The fault schedule for a seed: deterministic, so a failing seed replays the same faults. */
export function schedule(
  seed: number,
  options: { faultPhaseMs: number; instances: number; kinds?: readonly FaultKind[] },
): FaultSpec[] {
  const random = prng(seed);
  const kinds = options.kinds ?? FAULT_KINDS;
  const specs: FaultSpec[] = [];
  for (let t = 0; t < options.faultPhaseMs; ) {
    const spec: FaultSpec = {
      kind: kinds[Math.floor(random() * kinds.length)] ?? "kill-sub",
      instance: Math.floor(random() * options.instances),
      ms: 500 + Math.floor(random() * 3_500),
      pick: random(),
      gapMs: 1_000 + Math.floor(random() * 2_000),
    };
    specs.push(spec);
    t += spec.ms + spec.gapMs;
  }
  return specs;
}

export const instanceName = (index: number) => String.fromCharCode(97 + index);

export function describeFault(spec: FaultSpec): string {
  const on = `instance ${instanceName(spec.instance)}`;
  switch (spec.kind) {
    case "kill-sub":
      return "CLIENT KILL one instance's subscriber connection (tether:sub)";
    case "kill-commands":
      return "CLIENT KILL one instance's command connection (tether:commands)";
    case "cut-link":
      return `cut ${on}'s link to Redis, refuse reconnects for ${spec.ms} ms`;
    case "pause-instance":
      return `SIGSTOP ${on} for ${spec.ms} ms under a burst (client-output-buffer-limit ${PUBSUB_BUFFER_LIMIT})`;
    case "restart-redis":
      return `restart Redis (SIGTERM, AOF), down ${spec.ms} ms`;
    case "pause-redis":
      return `pause Redis for ${spec.ms} ms (${spec.pick < 0.5 ? "SIGSTOP" : "CLIENT PAUSE ALL"})`;
    case "failover":
      return `failover: promote the replica, demote the primary (writes fail READONLY) for ${spec.ms} ms, then move every link`;
    case "kill-instance":
      return `kill -9 ${on}, restart after ${spec.ms} ms`;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function namedIds(topology: Topology, name: string): Promise<string[]> {
  const list = (await topology.primary.admin.client("LIST")) as string;
  return list
    .split("\n")
    .filter((line) => line.includes(` name=${name} `))
    .map((line) => /id=(\d+)/.exec(line)?.[1])
    .filter((id): id is string => id !== undefined);
}

/** Kills one connection with this name (chosen by `pick`), whichever instance holds it. */
async function killNamed(topology: Topology, name: string, pick: number): Promise<string> {
  const ids = await namedIds(topology, name);
  const id = ids[Math.floor(pick * ids.length)];
  if (id === undefined) return `no ${name} connection to kill`;
  await topology.primary.admin.client("KILL", "ID", id);
  return `killed client id ${id} (one of ${ids.length})`;
}

export interface FaultContext {
  topology: Topology;
  /** Runs while an instance is frozen: enough traffic to overflow its subscriber's output buffer. */
  burst(ms: number): Promise<void>;
}

/** Injects one fault and heals it; resolves when the system is back in its normal shape, with a note. */
export async function inject(spec: FaultSpec, context: FaultContext): Promise<string> {
  const { topology } = context;
  const instance = topology.instances[spec.instance % topology.instances.length];
  if (!instance) throw new Error("no instance");
  switch (spec.kind) {
    case "kill-sub":
      return killNamed(topology, "tether:sub", spec.pick);
    case "kill-commands":
      return killNamed(topology, "tether:commands", spec.pick);
    case "cut-link":
      instance.link.refusing = true;
      instance.link.cut();
      await sleep(spec.ms);
      instance.link.refusing = false;
      return "";
    case "pause-instance": {
      const before = new Set(await namedIds(topology, "tether:sub"));
      instance.pause();
      await Promise.all([sleep(spec.ms), context.burst(spec.ms)]);
      const during = new Set(await namedIds(topology, "tether:sub"));
      instance.resume();
      const dropped = [...before].filter((id) => !during.has(id)).length;
      return `subscriber connections dropped by Redis while frozen: ${dropped}`;
    }
    case "restart-redis":
      await topology.primary.server.stop();
      await sleep(spec.ms);
      await topology.primary.server.start();
      await topology.primary.admin.config("SET", "client-output-buffer-limit", PUBSUB_BUFFER_LIMIT);
      return "";
    case "pause-redis":
      if (spec.pick < 0.5) {
        const pid = await topology.primary.pid();
        process.kill(pid, "SIGSTOP");
        await sleep(spec.ms);
        process.kill(pid, "SIGCONT");
      } else {
        await topology.primary.admin.client("PAUSE", String(spec.ms), "ALL");
        await sleep(spec.ms);
      }
      return "";
    case "failover": {
      // What a Sentinel failover looks like to clients that still reach the old primary: it is
      // demoted (writes fail with READONLY) until the address they use moves to the new one.
      const { primary, replica } = topology;
      // Writes pause while the replica catches up, as in a Sentinel or Cluster manual failover:
      // what the primary acknowledged is on the replica before it is promoted.
      await primary.admin.client("PAUSE", "5000", "WRITE");
      await replicaCaughtUp(primary.admin, replica.admin, 5_000);
      await replica.admin.replicaof("NO", "ONE");
      await primary.admin.replicaof("127.0.0.1", String(replica.server.port));
      await primary.admin.client("UNPAUSE");
      await sleep(spec.ms);
      topology.primary = replica;
      topology.replica = primary;
      topology.repoint();
      return `primary is now port ${replica.server.port}`;
    }
    case "kill-instance":
      await instance.kill();
      await sleep(spec.ms);
      await instance.start();
      return "";
  }
}
