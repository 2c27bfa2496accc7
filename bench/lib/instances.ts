/**
 * Server instances under test, started fresh by the bench on 127.0.0.1: plain
 * Socket.IO (bench/plain-server.ts) or Tether (bench/tether-server.ts), each on
 * its system's own redis-server, and HAProxy in front of several of them.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "@tether/testkit/ports";
import type { TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { Peer } from "./ipc.js";
import { memoryAfterGc } from "./proc-stats.js";
import { exited, onExit, spawnNode, spawnTracked, stop, whileAlive } from "./procs.js";
import type { Protocol } from "./protocol.js";

export type SystemName = "plain" | "tether";
/** Every kind of server the bench starts: the two systems, and bare Socket.IO (the memory floor). */
export type ServerKind = SystemName | "bare";

const BENCH_DIR = resolve(import.meta.dirname, "..");
const SCRATCH = mkdtempSync(join(tmpdir(), "tether-bench-"));
onExit(() => rmSync(SCRATCH, { recursive: true, force: true }));
/** One secret per run: every instance of a system reads every session of that system. */
const SECRET = randomBytes(32).toString("base64url");
const API_KEY = randomBytes(24).toString("base64url");

/**
 * Settings the bench changes from Tether's defaults: none. The connection and socket caps
 * come from the machine (the fd limit and the memory budget, see `resolveCapacity`), and
 * every rate limit stays on.
 */
export const TETHER_BENCH_ENV: Record<string, string> = {};

/** What the probe preloaded into each server reports (bench/probe.ts). */
export type Probe = NodeJS.MemoryUsage & { pubsubMessages: number };

/** One running server process. */
export interface Instance {
  readonly system: ServerKind;
  /** The instance id its `welcome` carries. */
  readonly name: string;
  readonly url: string;
  readonly port: number;
  /** Tether's health port (`TETHER_HEALTH_PORT`, checks answered off the event loop), where HAProxy checks it. */
  readonly healthPort?: number;
  readonly pid: number;
  /** Memory after a full GC, and the pub/sub messages its Redis connections received. */
  probe(): Promise<Probe>;
  /** `tether_fanout_messages_total` from /metrics (undefined when the instance has no such counter). */
  fanoutCounter(): Promise<number | undefined>;
  /** A Tether metric's samples from /metrics, by their label set (`{reason="delay"}`; `""` unlabelled). */
  samples(name: string): Promise<Record<string, number>>;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

export interface InstanceOptions {
  name: string;
  nodeFlags?: string[];
  /** Tether only: extra environment (e.g. `TETHER_RATE_LIMITS: "off"` for the round-trip probe). */
  env?: Record<string, string>;
}

/**
 * How every server is launched: as shipped (Tether from its build, under NODE_ENV=production as
 * the image sets it: measuring TypeScript run through tsx would bill Tether for a transpiler's
 * helpers that production never runs), with the memory probe preloaded.
 */
function launchOf(name: string, nodeFlags: string[] = []) {
  const probeFile = join(SCRATCH, `${name}-${randomBytes(3).toString("hex")}.json`);
  const launch = { nodeFlags: ["--expose-gc", ...nodeFlags], preload: [join(BENCH_DIR, "probe.ts")], built: true };
  return { launch, probeFile };
}

/** The environment every server gets: production mode, and where its probe writes. */
const serverEnv = (probeFile: string) => ({ ...process.env, NODE_ENV: "production", BENCH_PROBE_FILE: probeFile });

function instanceOf(
  system: ServerKind,
  name: string,
  port: number,
  child: ChildProcess,
  probeFile: string,
  healthPort?: number,
): Instance {
  const url = `http://127.0.0.1:${port}`;
  const samples = async (metric: string) => {
    const found: Record<string, number> = {};
    if (system !== "tether") return found;
    for (const line of (await (await fetch(`${url}/metrics`)).text()).split("\n")) {
      const labels = line.slice(metric.length, line.lastIndexOf(" "));
      if (line.startsWith(metric) && (labels === "" || labels.startsWith("{"))) {
        found[labels] = Number(line.slice(line.lastIndexOf(" ") + 1));
      }
    }
    return found;
  };
  return {
    system,
    name,
    url,
    port,
    healthPort,
    pid: child.pid ?? 0,
    probe: async () => (await memoryAfterGc(child.pid ?? 0, probeFile)) as Probe,
    fanoutCounter: async () => {
      const values = Object.values(await samples("tether_fanout_messages_total"));
      return values.length === 0 ? undefined : values.reduce((sum, n) => sum + n, 0);
    },
    samples,
    kill9: async () => {
      const done = exited(child);
      child.kill("SIGKILL");
      await done;
    },
    stop: () => stop(child),
  };
}

/** A Tether instance on `redis` with the default limits and caps (see TETHER_BENCH_ENV). */
export async function startTether(redis: TestRedis, options: InstanceOptions): Promise<Instance> {
  const { launch, probeFile } = launchOf(options.name, options.nodeFlags);
  const [port, healthPort] = [await freePort(), await freePort()];
  const logFile = join(SCRATCH, `${options.name}.log`);
  const log = openSync(logFile, "w");
  const env = {
    ...serverEnv(probeFile),
    PORT: String(port),
    // As deploy/haproxy.cfg checks it: on the health port, answered off the event loop.
    TETHER_HEALTH_PORT: String(healthPort),
    HOST: "127.0.0.1",
    REDIS_URL: redis.url,
    TETHER_API_KEY: API_KEY,
    TETHER_SESSION_SECRET: SECRET,
    TETHER_INSTANCE_ID: options.name,
    // Clients come from 127.0.0.2–250 directly, or through HAProxy with X-Forwarded-For.
    TETHER_TRUST_PROXY: "loopback",
    LOG_LEVEL: "warn",
    ...TETHER_BENCH_ENV,
    ...options.env,
  };
  const child = spawnNode(join(BENCH_DIR, "tether-server.ts"), { env, stdio: ["ignore", log, log] }, launch);
  const url = `http://127.0.0.1:${port}`;
  const ready = async () => (await fetch(`${url}/readyz`)).ok;
  await whileAlive(child, `tether ${options.name} (log: ${logFile})`, waitFor("readyz", ready, { timeoutMs: 60_000 }));
  return instanceOf("tether", options.name, port, child, probeFile, healthPort);
}

/** A plain Socket.IO instance on `redis`. */
export async function startPlain(redis: TestRedis, options: InstanceOptions): Promise<Instance> {
  const { launch, probeFile } = launchOf(options.name, options.nodeFlags);
  const port = await freePort();
  const config = JSON.stringify({ port, redisUrl: redis.url, instance: options.name, secret: SECRET });
  const env = serverEnv(probeFile);
  const child = spawnNode(
    join(BENCH_DIR, "plain-server.ts"),
    { env, stdio: ["ignore", "inherit", "inherit", "ipc"] },
    { ...launch, args: [config] },
  );
  await Peer.connect<Protocol>(child, 60_000);
  return instanceOf("plain", options.name, port, child, probeFile);
}

/** Bare Socket.IO (bench/bare-server.ts): no auth, no adapter, no Redis. */
export async function startBare(options: InstanceOptions): Promise<Instance> {
  const { launch, probeFile } = launchOf(options.name, options.nodeFlags);
  const port = await freePort();
  const env = serverEnv(probeFile);
  const child = spawnNode(
    join(BENCH_DIR, "bare-server.ts"),
    { env, stdio: ["ignore", "inherit", "inherit", "ipc"] },
    { ...launch, args: [JSON.stringify({ port, instance: options.name })] },
  );
  await Peer.connect<Protocol>(child, 60_000);
  return instanceOf("bare", options.name, port, child, probeFile);
}

export function startInstance(system: SystemName, redis: TestRedis, options: InstanceOptions): Promise<Instance> {
  return system === "plain" ? startPlain(redis, options) : startTether(redis, options);
}

/** Where each system's login route is. */
export const LOGIN_PATH: Record<SystemName, string> = { plain: "/login", tether: "/api/auth/login" };

export interface Balancer {
  url: string;
  stop(): Promise<void>;
}

/**
 * HAProxy in front of `instances`: leastconn, cookie stickiness (for long-polling
 * clients; these use WebSocket only), health checks every 500 ms (on Tether's health
 * port, as deploy/haproxy.cfg does), and a connection refused by a dead server retried
 * on another (redispatch).
 */
export async function startHaproxy(instances: Instance[]): Promise<Balancer> {
  const port = await freePort();
  const config = join(SCRATCH, `haproxy-${port}.cfg`);
  const servers = instances.map(
    (instance) =>
      `    server ${instance.name} 127.0.0.1:${instance.port} check inter 500ms fall 2 rise 2 cookie ${instance.name}` +
      (instance.healthPort === undefined ? "" : ` port ${instance.healthPort}`),
  );
  writeFileSync(
    config,
    [
      "global",
      "    maxconn 9000",
      "defaults",
      "    mode http",
      "    option forwardfor",
      "    option redispatch",
      "    retries 3",
      "    timeout connect 5s",
      "    timeout client 60s",
      "    timeout server 60s",
      "    timeout tunnel 1h",
      "frontend bench",
      `    bind 127.0.0.1:${port}`,
      "    default_backend instances",
      "backend instances",
      "    balance leastconn",
      "    cookie SERVERID insert indirect nocache",
      "    option httpchk GET /healthz",
      ...servers,
      "",
    ].join("\n"),
  );
  const child = spawnTracked("haproxy", ["-db", "-q", "-f", config], { stdio: ["ignore", "ignore", "inherit"] });
  const url = `http://127.0.0.1:${port}`;
  const up = async () => {
    try {
      return (await fetch(`${url}/healthz`)).ok;
    } catch {
      return false;
    }
  };
  await whileAlive(child, "haproxy", waitFor("haproxy", up, { timeoutMs: 15_000 }));
  return { url, stop: () => stop(child) };
}
