import {
  CLUSTER_NODE_TIMEOUT_MS,
  type NodeClient,
  PUBSUB_BUFFER_LIMIT,
  replicaCaughtUp,
  type StandaloneTopology,
  type Topology,
  type TopologyKind,
} from "./topology.js";

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
  "kill-master",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The standard fault mix of each topology (a Cluster has no single link to cut nor one primary to pause). */
export const KINDS_OF: Record<TopologyKind, readonly FaultKind[]> = {
  standalone: [
    "kill-sub",
    "kill-commands",
    "cut-link",
    "pause-instance",
    "restart-redis",
    "pause-redis",
    "failover",
    "kill-instance",
  ],
  cluster: ["kill-sub", "kill-commands", "pause-instance", "kill-instance", "kill-master"],
};

/** The topology a seed runs on when no flag says: one seed in four gets the Cluster. */
export function topologyOf(seed: number): TopologyKind {
  return prng(seed ^ 0x5bd1e995)() < 0.25 ? "cluster" : "standalone";
}

/**
 * The stream that stays quiet after a fault (seeded): one of those not quiet
 * already, so most streams keep publishing through the next faults.
 */
export function quietStream(seed: number, faultIndex: number, candidates: readonly string[]): string | undefined {
  const random = prng((seed ^ Math.imul(faultIndex + 1, 0x9e3779b1)) >>> 0);
  return candidates[Math.floor(random() * candidates.length)];
}

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
  options: { faultPhaseMs: number; instances: number; kinds?: readonly FaultKind[]; topology?: TopologyKind },
): FaultSpec[] {
  const random = prng(seed);
  const kinds = options.kinds ?? KINDS_OF[options.topology ?? "standalone"];
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
      return `SIGSTOP ${on} for ${spec.ms} ms or until Redis drops its subscriber, under a burst (client-output-buffer-limit ${PUBSUB_BUFFER_LIMIT})`;
    case "restart-redis":
      return `restart Redis (SIGTERM, AOF), down ${spec.ms} ms`;
    case "pause-redis":
      return `pause Redis for ${spec.ms} ms (${spec.pick < 0.5 ? "SIGSTOP" : "CLIENT PAUSE ALL"})`;
    case "failover":
      return `failover: promote the replica, demote the primary (writes fail READONLY) for ${spec.ms} ms, then move every link`;
    case "kill-instance":
      return `kill -9 ${on}, restart after ${spec.ms} ms`;
    case "kill-master":
      return `kill -9 a cluster master mid-publish; the cluster fails it over (node timeout ${CLUSTER_NODE_TIMEOUT_MS} ms); restart it after ${spec.ms} ms`;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Kills one connection with this name (chosen by `pick`), whichever instance (and node) holds it. */
async function killNamed(topology: Topology, name: string, pick: number): Promise<string> {
  const clients = await topology.clientsNamed(name);
  const client = clients[Math.floor(pick * clients.length)];
  if (client === undefined) return `no ${name} connection to kill`;
  await topology.killClient(client);
  return `killed client id ${client.id} on :${client.node} (one of ${clients.length})`;
}

/** The longest a freeze is held waiting for Redis to drop the subscriber, burst included. */
export const FREEZE_MAX_MS = 15_000;

const keyOf = (client: NodeClient) => `${client.node}/${client.id}`;

/** What a fault did. `dropped`: for a freeze, whether Redis dropped a subscriber for its output buffer. */
export interface FaultOutcome {
  note: string;
  dropped?: boolean;
}

function standalone(topology: Topology, kind: FaultKind): StandaloneTopology {
  if (topology.kind !== "standalone") throw new Error(`${kind} needs the standalone topology`);
  return topology;
}

export interface FaultContext {
  topology: Topology;
  /**
   * Runs while an instance is frozen: events for at least `minMs`, and traffic
   * until `done()` says the subscriber was dropped (or `maxMs`).
   */
  burst(options: { minMs: number; maxMs: number; done: () => Promise<boolean> }): Promise<void>;
  /** How many clients are connected to this instance now. */
  clientsOn(instance: string): number;
}

/** Injects one fault and heals it; resolves when the system is back in its normal shape, with a note. */
export async function inject(spec: FaultSpec, context: FaultContext): Promise<FaultOutcome> {
  const { topology } = context;
  const note = (text: string) => ({ note: text });
  let instance = topology.instances[spec.instance % topology.instances.length];
  if (!instance) throw new Error("no instance");
  if (spec.kind === "pause-instance" && context.clientsOn(instance.name) === 0) {
    // An instance without clients subscribes to nothing: freezing it could not overflow anything.
    const busiest = [...topology.instances].sort((a, b) => context.clientsOn(b.name) - context.clientsOn(a.name))[0];
    if (busiest) instance = busiest;
  }
  switch (spec.kind) {
    case "kill-sub":
      return note(await killNamed(topology, "tether:sub", spec.pick));
    case "kill-commands":
      return note(await killNamed(topology, "tether:commands", spec.pick));
    case "cut-link": {
      const { link } = instance;
      if (!link) throw new Error("cut-link needs the standalone topology");
      link.refusing = true;
      link.cut();
      await sleep(spec.ms);
      link.refusing = false;
      return note("");
    }
    case "pause-instance": {
      // Proof of a drop: a subscriber connection gone from CLIENT LIST while the instance was frozen
      // (nobody else could have closed it), and redis-server's log line saying why.
      const before = await topology.clientsNamed("tether:sub");
      const logged = topology.outputBufferDrops().length;
      const started = performance.now();
      const clientsThen = context.clientsOn(instance.name);
      let gone = 0;
      instance.pause();
      try {
        await context.burst({
          minMs: spec.ms,
          maxMs: FREEZE_MAX_MS,
          done: async () => {
            const during = new Set((await topology.clientsNamed("tether:sub")).map(keyOf));
            gone = before.filter((client) => !during.has(keyOf(client))).length;
            return gone > 0;
          },
        });
      } finally {
        instance.resume();
      }
      const held = Math.round(performance.now() - started);
      const lines = topology
        .outputBufferDrops()
        .slice(logged)
        .filter((line) => /name=\S*tether:sub /.test(line) || /\bssub=[1-9]/.test(line));
      const dropped = gone > 0 && lines.length > 0;
      return {
        dropped,
        note: `${dropped ? "DROPPED" : "NOT DROPPED"}: froze ${instance.name.slice(-1)} (${clientsThen} clients) for ${held} ms; ${gone} of ${before.length} subscriber connections gone from CLIENT LIST, ${lines.length} redis-server log lines "closed … for overcoming of output buffer limits"`,
      };
    }
    case "restart-redis": {
      const { primary } = standalone(topology, spec.kind);
      await primary.server.stop();
      await sleep(spec.ms);
      await primary.server.start();
      await primary.admin.config("SET", "client-output-buffer-limit", PUBSUB_BUFFER_LIMIT);
      return note("");
    }
    case "pause-redis": {
      const { primary } = standalone(topology, spec.kind);
      if (spec.pick < 0.5) {
        const pid = await primary.pid();
        process.kill(pid, "SIGSTOP");
        await sleep(spec.ms);
        process.kill(pid, "SIGCONT");
      } else {
        await primary.admin.client("PAUSE", String(spec.ms), "ALL");
        await sleep(spec.ms);
      }
      return note("");
    }
    case "failover": {
      const top = standalone(topology, spec.kind);
      // What a Sentinel failover looks like to clients that still reach the old primary: it is
      // demoted (writes fail with READONLY) until the address they use moves to the new one.
      const { primary, replica } = top;
      // Writes pause while the replica catches up, as in a Sentinel or Cluster manual failover:
      // what the primary acknowledged is on the replica before it is promoted.
      await primary.admin.client("PAUSE", "5000", "WRITE");
      await replicaCaughtUp(primary.admin, replica.admin, 5_000);
      await replica.admin.replicaof("NO", "ONE");
      await primary.admin.replicaof("127.0.0.1", String(replica.server.port));
      await primary.admin.client("UNPAUSE");
      await sleep(spec.ms);
      top.primary = replica;
      top.replica = primary;
      top.repoint();
      return note(`primary is now port ${replica.server.port}`);
    }
    case "kill-instance":
      await instance.kill();
      await sleep(spec.ms);
      await instance.start();
      return note("");
    case "kill-master": {
      if (topology.kind !== "cluster") throw new Error("kill-master needs the cluster topology");
      const { cluster } = topology;
      const masters = await cluster.masters();
      const port = masters[Math.floor(spec.pick * masters.length)];
      const node = cluster.nodes.find((candidate) => candidate.port === port);
      if (!node) return note("no master to kill");
      // No CLUSTER FAILOVER from here: the replica is promoted by the cluster's own failure detection.
      const killedAt = performance.now();
      await node.kill();
      await cluster.healthy(30_000);
      const failoverMs = Math.round(performance.now() - killedAt);
      const promoted = (await cluster.masters()).filter((candidate) => !masters.includes(candidate));
      await sleep(spec.ms);
      await node.start();
      await topology.configure(node.port);
      await cluster.healthy(30_000);
      return note(
        `killed master :${port}; the cluster promoted :${promoted.join(",") || "?"} after ${failoverMs} ms; :${port} rejoined as a replica`,
      );
    }
  }
}
