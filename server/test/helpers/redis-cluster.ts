import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Cluster } from "ioredis";
import { freePort } from "./ports.js";
import { waitFor } from "./wait.js";

const run = promisify(execFile);

/** A real three-master Redis Cluster on free ports (no replicas), for one test file. */
export interface TestRedisCluster {
  /** Seed node URLs, comma-separated, as REDIS_URL takes them with TETHER_REDIS_CLUSTER=on. */
  readonly urls: string;
  client(): Cluster;
  close(): Promise<void>;
}

export async function startRedisCluster(masters = 3): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), "tether-redis-cluster-"));
  const ports = await Promise.all(Array.from({ length: masters }, () => freePort()));
  const nodes: ChildProcess[] = ports.map((port) =>
    spawn(
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
        "2000",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
        "--loglevel",
        "warning",
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    ),
  );
  await waitFor("cluster nodes to listen", async () => {
    const replies = await Promise.all(
      ports.map((port) => run("redis-cli", ["-p", String(port), "ping"]).catch(() => undefined)),
    );
    return replies.every((reply) => reply?.stdout.trim() === "PONG");
  });
  await run("redis-cli", ["--cluster", "create", ...ports.map((port) => `127.0.0.1:${port}`), "--cluster-yes"]);
  // Every node must see the whole cluster: a PUBLISH reaches only the nodes its node already knows.
  await waitFor(
    "every node to see a healthy cluster",
    async () => {
      const infos = await Promise.all(ports.map((port) => run("redis-cli", ["-p", String(port), "cluster", "info"])));
      return infos.every(
        ({ stdout }) => stdout.includes("cluster_state:ok") && stdout.includes(`cluster_known_nodes:${masters}`),
      );
    },
    { timeoutMs: 20_000 },
  );
  const clients: Cluster[] = [];
  return {
    urls: ports.map((port) => `redis://127.0.0.1:${port}`).join(","),
    client() {
      const client = new Cluster(ports.map((port) => ({ host: "127.0.0.1", port })));
      clients.push(client);
      return client;
    },
    async close() {
      for (const client of clients) client.disconnect();
      await Promise.all(
        nodes.map((node) =>
          node.exitCode === null ? new Promise((resolve) => node.once("exit", resolve).kill("SIGKILL")) : undefined,
        ),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
