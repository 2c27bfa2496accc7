/**
 * The two systems under test, each started fresh by the bench on 127.0.0.1:
 * plain Socket.IO (the baseline) and a real Tether instance with its own redis-server.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createPublisher, loadConfig } from "@tether/server";
import { login } from "../../server/test/helpers/http.js";
import { freePort } from "../../server/test/helpers/ports.js";
import { waitFor } from "../../server/test/helpers/wait.js";
import { Peer } from "./ipc.js";
import { memoryAfterGc } from "./proc-stats.js";
import { onExit, spawnNode, stop, whileAlive } from "./procs.js";
import { benchPayload, type PlainProtocol } from "./protocol.js";
import type { BenchRedis } from "./redis.js";

const BENCH_DIR = resolve(import.meta.dirname, "..");
const SERVER_MAIN = resolve(BENCH_DIR, "../server/src/main.ts");
/** Tether publishes in flight at once from the bench's publisher (ioredis pipelines them). */
const PUBLISH_WINDOW = 64;
const PROBE_DIR = mkdtempSync(join(tmpdir(), "tether-bench-probe-"));
onExit(() => rmSync(PROBE_DIR, { recursive: true, force: true }));

/** Both servers run alike: the given flags, plus bench/probe.ts for memory after a full GC. */
function serverLaunch(name: System["name"], nodeFlags: string[]) {
  const probeFile = join(PROBE_DIR, `${name}.json`);
  const launch = { nodeFlags: ["--expose-gc", ...nodeFlags], preload: [join(BENCH_DIR, "probe.ts")] };
  return { launch, env: { ...process.env, BENCH_PROBE_FILE: probeFile }, probeFile };
}

/** A server under test, as the scenarios see it. */
export interface System {
  readonly name: "plain" | "tether";
  readonly url: string;
  /** The processes whose CPU and memory count as this system's. */
  readonly pids: { server: number; redis?: number };
  /** Tether's session cookies (a pool of logins); empty for the baseline, which has no auth. */
  readonly cookies: string[];
  /** Sends `count` bench events to the one connected client, the way this system pushes events. */
  emit(event: string, count: number): Promise<void>;
  /** The server process's memory right after a full GC. */
  memory(): Promise<NodeJS.MemoryUsage>;
  stop(): Promise<void>;
}

/** The baseline server process (bench/plain-server.ts). */
export async function startPlain(nodeFlags: string[]): Promise<System> {
  const { launch, env, probeFile } = serverLaunch("plain", nodeFlags);
  const stdio = ["ignore", "inherit", "inherit", "ipc"] as const;
  const child = spawnNode(join(BENCH_DIR, "plain-server.ts"), { env, stdio: [...stdio] }, launch);
  const { peer, ready } = await Peer.connect<PlainProtocol>(child);
  return {
    name: "plain",
    url: `http://127.0.0.1:${ready.port}`,
    pids: { server: child.pid ?? 0 },
    cookies: [],
    emit: async (event, count) => void (await peer.request("emit", { event, count })),
    memory: () => memoryAfterGc(child.pid ?? 0, probeFile),
    stop: () => stop(child),
  };
}

/** `count` logins, a few at a time: one session per simulated browser. */
async function loginPool(url: string, apiKey: string, count: number): Promise<string[]> {
  const cookies: string[] = [];
  while (cookies.length < count) {
    const batch = Math.min(10, count - cookies.length);
    const sessions = await Promise.all(Array.from({ length: batch }, () => login(url, apiKey)));
    cookies.push(...sessions.map((session) => session.cookie));
  }
  return cookies;
}

/**
 * A real Tether instance, started as `npm start` runs it (server/src/main.ts),
 * with `sessions` logins (browsers); it pushes events through `createPublisher`, as a worker would.
 */
export async function startTether(
  redis: BenchRedis,
  options: { sessions: number; nodeFlags: string[]; logFile: string },
): Promise<System> {
  const { launch, env: base, probeFile } = serverLaunch("tether", options.nodeFlags);
  const { logFile } = options;
  const port = await freePort();
  const apiKey = randomBytes(24).toString("base64url");
  const log = openSync(logFile, "w");
  const env = {
    ...base,
    PORT: String(port),
    HOST: "127.0.0.1",
    REDIS_URL: redis.url,
    TETHER_API_KEY: apiKey,
    TETHER_RATE_LIMITS: "off",
    TETHER_INSTANCE_ID: "bench",
    LOG_LEVEL: "warn",
  };
  const child = spawnNode(SERVER_MAIN, { env, stdio: ["ignore", log, log] }, launch);
  const url = `http://127.0.0.1:${port}`;
  const ready = async () => (await fetch(`${url}/readyz`)).ok;
  await whileAlive(child, `tether (log: ${logFile})`, waitFor("tether /readyz", ready, { timeoutMs: 30_000 }));
  const cookies = await loginPool(url, apiKey, options.sessions);
  const publisher = await createPublisher(loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "warn" }));
  return {
    name: "tether",
    url,
    pids: { server: child.pid ?? 0, redis: redis.child.pid ?? 0 },
    cookies,
    emit: async (event, count) => {
      let next = 0;
      const lane = async () => {
        while (next < count) await publisher.publish({ user: "admin" }, event, benchPayload(next++));
      };
      await Promise.all(Array.from({ length: PUBLISH_WINDOW }, lane));
    },
    memory: () => memoryAfterGc(child.pid ?? 0, probeFile),
    stop: async () => {
      await publisher.close();
      await stop(child);
    },
  };
}
