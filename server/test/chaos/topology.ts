import type { ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { FAST_ENV, LOG_DIR, spawnServer, whenReady } from "@tether/testkit/instance";
import { freePort } from "@tether/testkit/ports";
import { startProxy, type TestProxy } from "@tether/testkit/proxy";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { startRedisCluster, type TestRedisCluster } from "@tether/testkit/redis-cluster";
import { waitFor } from "@tether/testkit/wait";
import { type Cluster, Redis } from "ioredis";
import type { StreamEntryRecord } from "./checker.js";

const HOST_MAIN = resolve(import.meta.dirname, "host.ts");

export const API_KEY = "chaos-api-key-0123456789";
export const PUBLISH_KEY = "chaos-publish-key-0123456789";

/**
 * Redis's limit for a pub/sub client's output buffer: hard 1 MB, or 256 kB for
 * 1 s. A subscriber that stops reading for a few seconds under load is dropped,
 * as a production Redis would drop an instance frozen by a long GC.
 */
export const PUBSUB_BUFFER_LIMIT = "pubsub 1mb 256kb 1";

/** What Redis runs as: one primary with a replica, or a Cluster of 3 masters with a replica each. */
export const TOPOLOGY_KINDS = ["standalone", "cluster"] as const;
export type TopologyKind = (typeof TOPOLOGY_KINDS)[number];

/**
 * cluster-node-timeout of the chaos cluster: short, so a killed master is failed
 * over by the cluster itself within seconds (detection, then the replica's election).
 */
export const CLUSTER_NODE_TIMEOUT_MS = 1_500;

/** The line redis-server logs when it drops a client for its output buffer (7.x wording). */
const OUTPUT_BUFFER_DROP = /scheduled to be closed ASAP for overcoming of output buffer limits/;

/** A chaos server process, reachable at `port`, reaching Redis through its own link. */
export interface ChaosInstance {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  /** Its own TCP proxy to Redis: cut it to cut this instance alone (none on a Cluster: nodes are dialled directly). */
  readonly link: TestProxy | undefined;
  readonly running: boolean;
  readonly paused: boolean;
  kill(): Promise<void>;
  start(): Promise<void>;
  /** SIGSTOP (a long GC pause, a frozen VM). */
  pause(): void;
  /** SIGCONT */
  resume(): void;
  stop(): Promise<void>;
}

/** An instance that exited on its own: what an orchestrator would restart, and what the report must show. */
export interface Crash {
  instance: string;
  code: number | null;
  signal: string | null;
  /** The last error line of its log. */
  detail: string;
}

/** How long a crashed instance stays down before it is restarted, as a supervisor would. */
const RESTART_AFTER_CRASH_MS = 500;

function lastErrorLine(file: string): string {
  try {
    const lines = readFileSync(file, "utf8").split("\n");
    return lines.reverse().find((line) => /^\w*Error\b/.test(line)) ?? "";
  } catch {
    return "";
  }
}

async function startChaosInstance(
  name: string,
  link: TestProxy | undefined,
  env: Record<string, string>,
  onCrash: (crash: Crash) => void,
): Promise<ChaosInstance> {
  const port = await freePort();
  const logFile = join(LOG_DIR, `${name}.log`);
  let child: ChildProcess | undefined;
  let paused = false;
  /** Set while this side stops the process (a fault's kill -9, the end): that exit is no crash. */
  let stopping = false;
  let closed = false;
  const exited = (proc: ChildProcess) =>
    proc.exitCode !== null || proc.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((done) => proc.once("exit", () => done()));

  const start = async () => {
    const proc = spawnServer(HOST_MAIN, name, port, {
      ...FAST_ENV,
      // Fast liveness: a frozen instance's clients notice within a second and move on.
      TETHER_PING_TIMEOUT: "500ms",
      // The production defaults: every rate limit on.
      TETHER_RATE_LIMITS: "on",
      ...(link ? { REDIS_URL: `redis://127.0.0.1:${link.port}` } : {}),
      ...env,
    });
    child = proc;
    paused = false;
    proc.once("exit", (code, signal) => {
      if (stopping || closed || child !== proc) return;
      child = undefined;
      // Let the log flush its last lines (the crash's stack) before reading them.
      setTimeout(() => {
        onCrash({ instance: name, code, signal, detail: lastErrorLine(logFile) });
        if (!closed && child === undefined) start().catch(() => {});
      }, RESTART_AFTER_CRASH_MS);
    });
    await whenReady(proc, name, port);
  };
  const kill = async () => {
    const proc = child;
    if (!proc) return;
    stopping = true;
    const done = exited(proc);
    proc.kill("SIGKILL");
    await done;
    stopping = false;
    child = undefined;
    paused = false;
  };
  await start();
  const instance: ChaosInstance = {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    link,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    get paused() {
      return paused;
    },
    kill,
    start,
    pause() {
      if (child?.kill("SIGSTOP")) paused = true;
    },
    resume() {
      child?.kill("SIGCONT");
      paused = false;
    },
    async stop() {
      closed = true;
      if (paused) instance.resume();
      await kill();
    },
  };
  return instance;
}

/** A Redis node, with the process id needed to freeze it. */
export interface ChaosRedis {
  readonly server: TestRedis;
  readonly logFile: string;
  readonly admin: Redis;
  pid(): Promise<number>;
}

async function chaosRedis(logFile: string): Promise<ChaosRedis> {
  // Its log is the evidence of an output-buffer drop (warning level).
  const server = await startRedis({ persistence: true, args: ["--logfile", logFile] });
  const admin = server.client();
  await admin.config("SET", "client-output-buffer-limit", PUBSUB_BUFFER_LIMIT);
  return {
    server,
    logFile,
    admin,
    pid: async () => Number(/process_id:(\d+)/.exec(await admin.info("server"))?.[1]),
  };
}

/** A connection Redis holds for a client, on the node (port) that holds it. */
export interface NodeClient {
  node: number;
  id: string;
}

/** What every topology offers the faults and the run. */
interface TopologyBase {
  readonly instances: ChaosInstance[];
  /** What clients connect to: round-robin over the instances, skipping dead ones. */
  readonly lb: TestProxy;
  /** The connections named `name` (CLIENT SETNAME) on every live node. */
  clientsNamed(name: string): Promise<NodeClient[]>;
  killClient(client: NodeClient): Promise<void>;
  /** Publishes on a sharded channel (on a Cluster, to the shard of its slot). */
  spublish(channel: string, message: string): Promise<unknown>;
  /** The lines of every node's log so far that say a client was dropped for its output buffer. */
  outputBufferDrops(): string[];
  /** Every entry of these streams, as Redis holds them now, with the call id from its data. */
  readEntries(streams: string[]): Promise<StreamEntryRecord[]>;
  close(): Promise<void>;
}

/**
 * The standalone system under test: two Redis nodes (a primary with AOF, and a
 * replica standing by for failover), one TCP link per instance to the primary,
 * the instances, and a TCP load balancer in front of them for the clients.
 */
export interface StandaloneTopology extends TopologyBase {
  readonly kind: "standalone";
  primary: ChaosRedis;
  replica: ChaosRedis;
  /** Points every link at the current primary and cuts what went elsewhere. */
  repoint(): void;
}

/**
 * A Redis Cluster of 3 masters with a replica each (cluster-node-timeout
 * short: the cluster fails a killed master over by itself), the instances
 * dialling its nodes directly (TETHER_REDIS_CLUSTER=on), and the load balancer.
 */
export interface ClusterTopology extends TopologyBase {
  readonly kind: "cluster";
  readonly cluster: TestRedisCluster;
  /** Applies the chaos settings (the pub/sub output buffer limit) to a node, e.g. after its restart. */
  configure(port: number): Promise<void>;
}

export type Topology = StandaloneTopology | ClusterTopology;

const streamKey = (stream: string) => `tether:stream:{${stream}}`;

function toEntries(stream: string, raw: [string, string[]][]): StreamEntryRecord[] {
  return raw.map(([id, fields]) => {
    let callId = "";
    try {
      callId = String((JSON.parse(fields[3] ?? "{}") as { cid?: unknown }).cid ?? "");
    } catch {
      // Not one of ours: no call id.
    }
    return { stream, id, callId };
  });
}

function dropLines(files: string[]): string[] {
  return files.flatMap((file) => {
    try {
      return readFileSync(file, "utf8")
        .split("\n")
        .filter((line) => OUTPUT_BUFFER_DROP.test(line));
    } catch {
      return [];
    }
  });
}

/** On a Cluster, ioredis names its sharded subscribers `ioredis-cluster(ssubscriber):<name>`. */
function parseClientList(node: number, list: string, name: string): NodeClient[] {
  return list
    .split("\n")
    .filter((line) => {
      const given = / name=(\S*) /.exec(line)?.[1] ?? "";
      return given === name || given.endsWith(`:${name}`);
    })
    .map((line) => /id=(\d+)/.exec(line)?.[1])
    .filter((id): id is string => id !== undefined)
    .map((id) => ({ node, id }));
}

/**
 * Resolves once the replica is linked and has applied everything the primary
 * wrote (offsets equal). A failover promotes only such a replica: Sentinel and
 * Cluster manual failovers wait for it, so the data the test relies on (the
 * sessions) is never lost to a replica that was still loading.
 */
export async function replicaCaughtUp(primary: Redis, replica: Redis, timeoutMs = 10_000): Promise<void> {
  const field = (info: string, name: string) => new RegExp(`^${name}:(\\S+)`, "m").exec(info)?.[1];
  await waitFor(
    "the replica to catch up",
    async () => {
      const [ours, theirs] = await Promise.all([primary.info("replication"), replica.info("replication")]);
      return (
        field(theirs, "master_link_status") === "up" &&
        field(ours, "master_repl_offset") === field(theirs, "slave_repl_offset")
      );
    },
    { timeoutMs, intervalMs: 10 },
  );
}

export async function startTopology(options: {
  kind?: TopologyKind;
  instances: number;
  env: Record<string, string>;
  runId: string;
  /** An instance exited on its own (it is restarted): for the report. */
  onCrash?: (crash: Crash) => void;
}): Promise<Topology> {
  return options.kind === "cluster" ? startClusterTopology(options) : startStandaloneTopology(options);
}

const instanceEnv = (env: Record<string, string>) => ({
  TETHER_API_KEY: API_KEY,
  TETHER_PUBLISH_KEY: PUBLISH_KEY,
  ...env,
});

interface TopologyOptions {
  instances: number;
  env: Record<string, string>;
  runId: string;
  onCrash?: (crash: Crash) => void;
}

async function startStandaloneTopology(options: TopologyOptions): Promise<StandaloneTopology> {
  mkdirSync(LOG_DIR, { recursive: true });
  const primary = await chaosRedis(join(LOG_DIR, `chaos-${options.runId}-redis-0.log`));
  const replica = await chaosRedis(join(LOG_DIR, `chaos-${options.runId}-redis-1.log`));
  await replica.admin.replicaof("127.0.0.1", String(primary.server.port));
  await replicaCaughtUp(primary.admin, replica.admin);
  const instances: ChaosInstance[] = [];
  for (let i = 0; i < options.instances; i++) {
    const link = await startProxy([primary.server.port]);
    instances.push(
      await startChaosInstance(
        `chaos-${options.runId}-${String.fromCharCode(97 + i)}`,
        link,
        instanceEnv(options.env),
        options.onCrash ?? (() => {}),
      ),
    );
  }
  const lb = await startProxy(instances.map((instance) => instance.port));
  const topology: StandaloneTopology = {
    kind: "standalone",
    primary,
    replica,
    instances,
    lb,
    repoint() {
      for (const instance of instances) {
        if (!instance.link) continue;
        instance.link.backends = [topology.primary.server.port];
        instance.link.cut();
      }
    },
    async clientsNamed(name) {
      const node = topology.primary.server.port;
      return parseClientList(node, (await topology.primary.admin.client("LIST")) as string, name);
    },
    async killClient({ id }) {
      await topology.primary.admin.client("KILL", "ID", id);
    },
    spublish: (channel, message) => topology.primary.admin.spublish(channel, message),
    outputBufferDrops: () => dropLines([primary.logFile, replica.logFile]),
    async readEntries(streams) {
      const all = await Promise.all(
        streams.map(async (stream) =>
          toEntries(stream, (await topology.primary.admin.xrange(streamKey(stream), "-", "+")) as [string, string[]][]),
        ),
      );
      return all.flat();
    },
    async close() {
      await lb.close();
      await Promise.all(instances.map((instance) => instance.stop()));
      await Promise.all(instances.map((instance) => instance.link?.close()));
      await Promise.all([topology.primary, topology.replica].map((node) => node.server.close()));
    },
  };
  return topology;
}

async function startClusterTopology(options: TopologyOptions): Promise<ClusterTopology> {
  const cluster = await startRedisCluster(3, { replicas: 1, nodeTimeoutMs: CLUSTER_NODE_TIMEOUT_MS });
  /** One plain connection per node, for CLIENT LIST/KILL and CONFIG: a dead node's commands fail fast. */
  const admins = new Map<number, Redis>();
  const adminOf = (port: number) => {
    let admin = admins.get(port);
    if (!admin) {
      admin = new Redis(port, "127.0.0.1", { maxRetriesPerRequest: 0, commandTimeout: 1_000 });
      admin.on("error", () => {});
      admins.set(port, admin);
    }
    return admin;
  };
  const configure = async (port: number) => {
    await adminOf(port).config("SET", "client-output-buffer-limit", PUBSUB_BUFFER_LIMIT);
  };
  await Promise.all(cluster.nodes.map((node) => configure(node.port)));
  const client: Cluster = cluster.client();
  client.on("error", () => {});
  const instances: ChaosInstance[] = [];
  try {
    for (let i = 0; i < options.instances; i++) {
      instances.push(
        await startChaosInstance(
          `chaos-${options.runId}-${String.fromCharCode(97 + i)}`,
          undefined,
          {
            ...instanceEnv(options.env),
            TETHER_REDIS_CLUSTER: "on",
            REDIS_URL: cluster.urls,
          },
          options.onCrash ?? (() => {}),
        ),
      );
    }
  } catch (err) {
    await Promise.all(instances.map((instance) => instance.stop()));
    for (const admin of admins.values()) admin.disconnect();
    await cluster.close();
    throw err;
  }
  const lb = await startProxy(instances.map((instance) => instance.port));
  return {
    kind: "cluster",
    cluster,
    instances,
    lb,
    configure,
    async clientsNamed(name) {
      const lists = await Promise.all(
        cluster.nodes
          .filter((node) => node.running)
          .map(async (node) =>
            parseClientList(
              node.port,
              ((await adminOf(node.port)
                .client("LIST")
                .catch(() => "")) as string) ?? "",
              name,
            ),
          ),
      );
      return lists.flat();
    },
    async killClient({ node, id }) {
      await adminOf(node).client("KILL", "ID", id);
    },
    spublish: (channel, message) => client.spublish(channel, message),
    outputBufferDrops: () => dropLines(cluster.nodes.map((node) => node.logFile)),
    async readEntries(streams) {
      const all = await Promise.all(
        streams.map(async (stream) =>
          toEntries(stream, (await client.xrange(streamKey(stream), "-", "+")) as [string, string[]][]),
        ),
      );
      return all.flat();
    },
    async close() {
      await lb.close();
      await Promise.all(instances.map((instance) => instance.stop()));
      client.disconnect();
      for (const admin of admins.values()) admin.disconnect();
      await cluster.close();
    },
  };
}
