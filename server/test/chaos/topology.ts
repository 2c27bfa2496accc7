import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Redis } from "ioredis";
import { FAST_ENV, LOG_DIR } from "../helpers/instance.js";
import { freePort } from "../helpers/ports.js";
import { startProxy, type TestProxy } from "../helpers/proxy.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait.js";

const HOST_MAIN = resolve(import.meta.dirname, "host.ts");

export const API_KEY = "chaos-api-key-0123456789";
export const PUBLISH_KEY = "chaos-publish-key-0123456789";

/**
 * Redis's limit for a pub/sub client's output buffer: hard 1 MB, or 256 kB for
 * 1 s. A subscriber that stops reading for a few seconds under load is dropped,
 * as a production Redis would drop an instance frozen by a long GC.
 */
export const PUBSUB_BUFFER_LIMIT = "pubsub 1mb 256kb 1";

/** A chaos server process, reachable at `port`, reaching Redis through its own link. */
export interface ChaosInstance {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  /** Its own TCP proxy to Redis: cut it to cut this instance alone. */
  readonly link: TestProxy;
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

async function startChaosInstance(name: string, link: TestProxy, env: Record<string, string>): Promise<ChaosInstance> {
  const port = await freePort();
  mkdirSync(LOG_DIR, { recursive: true });
  let child: ChildProcess | undefined;
  let paused = false;
  const exited = (proc: ChildProcess) =>
    proc.exitCode !== null || proc.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((done) => proc.once("exit", () => done()));

  const start = async () => {
    const log = createWriteStream(join(LOG_DIR, `${name}.log`), { flags: "a" });
    const proc = spawn(process.execPath, ["--conditions=source", "--import", "tsx", HOST_MAIN], {
      env: {
        ...process.env,
        ...FAST_ENV,
        // The production defaults: every rate limit on.
        TETHER_RATE_LIMITS: "on",
        ...env,
        REDIS_URL: `redis://127.0.0.1:${link.port}`,
        PORT: String(port),
        HOST: "127.0.0.1",
        TETHER_INSTANCE_ID: name,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = proc;
    paused = false;
    proc.stdout?.pipe(log);
    proc.stderr?.pipe(log);
    await waitFor(
      `chaos instance ${name} on port ${port}`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode}; see ${LOG_DIR}/${name}.log`);
        return (await fetch(`http://127.0.0.1:${port}/readyz`)).ok;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
  };
  const kill = async () => {
    const proc = child;
    if (!proc) return;
    const done = exited(proc);
    proc.kill("SIGKILL");
    await done;
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
      if (paused) instance.resume();
      await kill();
    },
  };
  return instance;
}

/** A Redis node, with the process id needed to freeze it. */
export interface ChaosRedis {
  readonly server: TestRedis;
  readonly admin: Redis;
  pid(): Promise<number>;
}

async function chaosRedis(): Promise<ChaosRedis> {
  const server = await startRedis({ persistence: true });
  const admin = server.client();
  await admin.config("SET", "client-output-buffer-limit", PUBSUB_BUFFER_LIMIT);
  return {
    server,
    admin,
    pid: async () => Number(/process_id:(\d+)/.exec(await admin.info("server"))?.[1]),
  };
}

/**
 * The system under test: two Redis nodes (a primary with AOF, and a replica
 * standing by for failover), one TCP link per instance to the primary, the
 * instances, and a TCP load balancer in front of them for the clients.
 */
export interface Topology {
  primary: ChaosRedis;
  replica: ChaosRedis;
  readonly instances: ChaosInstance[];
  /** What clients connect to: round-robin over the instances, skipping dead ones. */
  readonly lb: TestProxy;
  /** Points every link at the current primary and cuts what went elsewhere. */
  repoint(): void;
  close(): Promise<void>;
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
  instances: number;
  env: Record<string, string>;
  runId: string;
}): Promise<Topology> {
  const primary = await chaosRedis();
  const replica = await chaosRedis();
  await replica.admin.replicaof("127.0.0.1", String(primary.server.port));
  await replicaCaughtUp(primary.admin, replica.admin);
  const instances: ChaosInstance[] = [];
  for (let i = 0; i < options.instances; i++) {
    const link = await startProxy([primary.server.port]);
    instances.push(
      await startChaosInstance(`chaos-${options.runId}-${String.fromCharCode(97 + i)}`, link, {
        TETHER_API_KEY: API_KEY,
        TETHER_PUBLISH_KEY: PUBLISH_KEY,
        ...options.env,
      }),
    );
  }
  const lb = await startProxy(instances.map((instance) => instance.port));
  const topology: Topology = {
    primary,
    replica,
    instances,
    lb,
    repoint() {
      for (const instance of instances) {
        instance.link.backends = [topology.primary.server.port];
        instance.link.cut();
      }
    },
    async close() {
      await lb.close();
      await Promise.all(instances.map((instance) => instance.stop()));
      await Promise.all(instances.map((instance) => instance.link.close()));
      await Promise.all([topology.primary, topology.replica].map((node) => node.server.close()));
    },
  };
  return topology;
}
