import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Cluster } from "ioredis";
import { freePort } from "./ports.js";
import { waitFor } from "./wait.js";

const run = promisify(execFile);

/** A real three-master Redis Cluster on free ports (no replicas unless asked), for one test file. */
export interface TestRedisCluster {
  /** Seed node URLs, comma-separated, as REDIS_URL takes them with TETHER_REDIS_CLUSTER=on. */
  readonly urls: string;
  /** Every node, masters first as created (roles change after a failover: see `masters()`). */
  readonly nodes: readonly TestClusterNode[];
  client(): Cluster;
  /** The ports of the nodes that are masters now, as a live node sees it (failed ones excluded). */
  masters(): Promise<number[]>;
  /** Resolves once every live node reports cluster_state:ok and every slot is on a live master. */
  healthy(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** One cluster node: its own process, which a fault can kill (-9) and start again with its nodes.conf. */
export interface TestClusterNode {
  readonly port: number;
  readonly running: boolean;
  /** Its redis-server log (warnings: output-buffer drops, failover steps). */
  readonly logFile: string;
  kill(): Promise<void>;
  start(): Promise<void>;
  pid(): number | undefined;
}

export interface RedisClusterOptions {
  /** Replicas per master (0: none). */
  replicas?: number;
  /** cluster-node-timeout: how long a silent master takes to be failed over by the cluster itself. */
  nodeTimeoutMs?: number;
  /** Extra redis-server arguments for every node (e.g. a client-output-buffer-limit). */
  args?: string[];
}

export async function startRedisCluster(masters = 3, options: RedisClusterOptions = {}): Promise<TestRedisCluster> {
  const replicas = options.replicas ?? 0;
  const dir = mkdtempSync(join(tmpdir(), "tether-redis-cluster-"));
  const ports = await Promise.all(Array.from({ length: masters * (1 + replicas) }, () => freePort()));
  const nodes = ports.map((port) => clusterNode(port, dir, options));
  await Promise.all(nodes.map((node) => node.start()));
  await run("redis-cli", [
    "--cluster",
    "create",
    ...ports.map((port) => `127.0.0.1:${port}`),
    "--cluster-replicas",
    String(replicas),
    "--cluster-yes",
  ]);
  const cli = (port: number, ...args: string[]) => run("redis-cli", ["-p", String(port), ...args]);
  /** Masters not flagged fail or fail? by a live node: `<id> <ip:port@cport> <flags> …` per line. */
  const mastersNow = async () => {
    const live = nodes.find((node) => node.running);
    if (!live) return [];
    const { stdout } = await cli(live.port, "cluster", "nodes");
    return stdout
      .split("\n")
      .map((line) => line.split(" "))
      .filter((fields) => {
        const flags = (fields[2] ?? "").split(",");
        return flags.includes("master") && !flags.some((flag) => flag.startsWith("fail"));
      })
      .map((fields) => Number(/:(\d+)@/.exec(fields[1] ?? "")?.[1]))
      .filter((port) => port > 0);
  };
  const healthy = async (timeoutMs = 20_000) => {
    await waitFor(
      "every node to see a healthy cluster",
      async () => {
        const live = nodes.filter((node) => node.running);
        // A killed master still counts as ok until the others flag it: wait for its slots to move.
        const current = await mastersNow().catch(() => []);
        if (current.length !== masters || !current.every((port) => live.some((node) => node.port === port)))
          return false;
        const infos = await Promise.all(live.map((node) => cli(node.port, "cluster", "info").catch(() => undefined)));
        // Every node must see the whole cluster: a PUBLISH reaches only the nodes its node already knows.
        // A replica that never finished its sync is too stale to be promoted: wait for every link.
        const replication = await Promise.all(
          live.map((node) => cli(node.port, "info", "replication").catch(() => undefined)),
        );
        if (
          replication.some(
            (info) => info?.stdout.includes("role:slave") && !info.stdout.includes("master_link_status:up"),
          )
        )
          return false;
        return infos.every(
          (info) =>
            info?.stdout.includes("cluster_state:ok") &&
            info.stdout.includes(`cluster_known_nodes:${nodes.length}`) &&
            info.stdout.includes("cluster_slots_ok:16384"),
        );
      },
      { timeoutMs, intervalMs: 100 },
    );
  };
  await healthy();
  const clients: Cluster[] = [];
  return {
    urls: ports.map((port) => `redis://127.0.0.1:${port}`).join(","),
    nodes,
    client() {
      const client = new Cluster(ports.map((port) => ({ host: "127.0.0.1", port })));
      clients.push(client);
      return client;
    },
    async masters() {
      return mastersNow();
    },
    healthy,
    async close() {
      for (const client of clients) client.disconnect();
      await Promise.all(nodes.map((node) => node.kill()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function clusterNode(port: number, dir: string, options: RedisClusterOptions): TestClusterNode {
  let child: ChildProcess | undefined;
  const logFile = join(dir, `redis-${port}.log`);
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  return {
    port,
    logFile,
    get running() {
      return running();
    },
    pid: () => child?.pid,
    async start() {
      const proc = spawn(
        "redis-server",
        [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          join(dir, `nodes-${port}.conf`),
          "--cluster-node-timeout",
          String(options.nodeTimeoutMs ?? 2000),
          "--dir",
          dir,
          "--dbfilename",
          `dump-${port}.rdb`,
          "--save",
          "",
          "--appendonly",
          "no",
          "--loglevel",
          "warning",
          // Promote any replica of a failed master, however long its link was down: the cluster fails over by itself.
          "--cluster-replica-validity-factor",
          "0",
          "--logfile",
          logFile,
          ...(options.args ?? []),
        ],
        { stdio: ["ignore", "ignore", "inherit"] },
      );
      child = proc;
      await waitFor(`cluster node ${port} to listen`, async () => {
        if (proc.exitCode !== null) throw new Error(`redis-server ${port} exited with ${proc.exitCode}`);
        const reply = await run("redis-cli", ["-p", String(port), "ping"]).catch(() => undefined);
        return reply?.stdout.trim() === "PONG";
      });
    },
    async kill() {
      const proc = child;
      if (!proc || !running()) return;
      await new Promise((resolve) => proc.once("exit", resolve).kill("SIGKILL"));
    },
  };
}
