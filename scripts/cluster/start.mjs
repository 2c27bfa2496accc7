// The docker-compose topology on this machine, without Docker: redis-server,
// N Tether instances and HAProxy with deploy/haproxy.cfg. `npm run cluster`
// runs it in the foreground; tests import startCluster() to drive restarts
// and failures through the real load balancer.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildIfMissing } from "../build-if-missing.mjs";
import { MAX_INSTANCES, startHaproxy } from "./haproxy.mjs";
import { Fatal, freePort, freePorts, ManagedProcess, waitUntil } from "./process.mjs";
import { startRedis } from "./redis.mjs";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const HAPROXY_CONFIG = join(ROOT, "deploy/haproxy.cfg");
/** What `npm run cluster` keeps between runs (gitignored): the self-signed certificate. */
export const STATE_DIR = join(ROOT, ".cluster");

/**
 * The PEM HAProxy serves: `TETHER_TLS_CERT` when set (certificate and key in
 * one file), otherwise a self-signed one made at first start in STATE_DIR by
 * deploy/tls-cert.sh (the script compose's `init` service runs).
 * @param {NodeJS.ProcessEnv} env
 * @returns {string}
 */
export function clusterCertificate(env = process.env) {
  if (env.TETHER_TLS_CERT) return resolve(env.TETHER_TLS_CERT);
  const pem = join(STATE_DIR, "tls.pem");
  execFileSync("sh", [join(ROOT, "deploy/tls-cert.sh"), pem], { stdio: ["ignore", "ignore", "inherit"] });
  return pem;
}

/**
 * The certificate part of a PEM file, for a client to trust (a self-signed certificate is its own CA).
 * @param {string} pem
 */
export function certificateOf(pem) {
  const blocks = readFileSync(pem, "utf8").match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) throw new Error(`${pem} holds no certificate`);
  return `${blocks.join("\n")}\n`;
}

/** Runs the built server, as the Docker image does (the default). */
export const BUILT_COMMAND = [process.execPath, "server/dist/main.js"];
/** Runs the server from its TypeScript sources (no build; what tests use). */
export const SOURCE_COMMAND = [process.execPath, "--conditions=source", "--import", "tsx", "server/src/main.ts"];

/**
 * @typedef {object} ClusterOptions
 * @property {number} [instances]  how many Tether instances (1 to 8; default 3)
 * @property {number} [port]       the load balancer's plain HTTP port on 127.0.0.1 (default: a free one)
 * @property {boolean} [tls]       HAProxy terminates TLS, and plain HTTP redirects to it (default true)
 * @property {number} [tlsPort]    its HTTPS port on 127.0.0.1 (default: a free one)
 * @property {string} [tlsCert]    PEM with certificate and key (default: `clusterCertificate()`)
 * @property {Record<string, string>} [lbEnv]  more of deploy/haproxy.cfg's variables (e.g. LB_HARD_STOP_AFTER)
 * @property {Record<string, string | undefined>} [env]
 *   settings for every instance, over process.env (e.g. short TETHER_PING_INTERVAL in tests).
 *   PORT, HOST, REDIS_URL and TETHER_INSTANCE_ID are the cluster's; TETHER_TRUST_PROXY
 *   defaults to 1 and TETHER_API_KEY to a generated key shared by all.
 * @property {string[]} [command]  how to run one instance, run in the repository root
 *   (default BUILT_COMMAND, building first when the build is missing; SOURCE_COMMAND skips the build)
 * @property {string} [logDir]     one log file per process (default: a new temporary folder)
 * @property {(name: string, line: string) => void} [onLine]  also gets every line of output
 * @property {number} [readyTimeoutMs]  longest wait for one process to be ready (default 60 s)
 */

/**
 * @typedef {object} ClusterInstance
 * @property {string} name      tether1, tether2, … (its TETHER_INSTANCE_ID and HAProxy server name)
 * @property {number} port
 * @property {string} url       direct, bypassing the load balancer
 * @property {number | undefined} pid   of the current run
 * @property {number[]} pids    of every run so far
 * @property {boolean} running
 * @property {() => Promise<number | null>} stop   SIGTERM (a graceful drain), and its exit code
 * @property {() => Promise<void>} kill            SIGKILL
 * @property {() => Promise<void>} start           a new run on the same port; resolves once /readyz answers
 */

/**
 * @typedef {object} Cluster
 * @property {string} url          the load balancer, e.g. https://127.0.0.1:8443 (http:// with tls off)
 * @property {string} httpUrl      its plain HTTP listener (which redirects to `url` when TLS is on)
 * @property {string | undefined} ca   the certificate HAProxy serves, for clients to trust (TLS on)
 * @property {string} apiKey
 * @property {string} logDir
 * @property {ClusterInstance[]} instances
 * @property {import("./redis.mjs").ClusterRedis} redis
 * @property {import("./haproxy.mjs").ClusterLb} lb
 * @property {() => number[]} pids   every process the cluster ever started
 * @property {() => Promise<void>} stop
 *   instances first (SIGTERM, in parallel, each draining), then HAProxy, then Redis;
 *   removes Redis's data and keeps the logs. Safe to call twice.
 */

/**
 * Starts Redis, the instances and HAProxy, and resolves once HAProxy sees every
 * instance UP. On failure everything started so far is stopped.
 *
 * @example
 *   const cluster = await startCluster({ instances: 3, command: SOURCE_COMMAND });
 *   await fetch(`${cluster.url}/readyz`);
 *   await cluster.instances[0].stop();
 *   await cluster.stop();
 *
 * @param {ClusterOptions} [options]
 * @returns {Promise<Cluster>}
 */
export async function startCluster(options = {}) {
  const count = options.instances ?? 3;
  if (!Number.isInteger(count) || count < 1 || count > MAX_INSTANCES) {
    throw new Error(`instances: expected 1 to ${MAX_INSTANCES}, got ${count}`);
  }
  const command = options.command ?? BUILT_COMMAND;
  if (!options.command) buildIfMissing("cluster");
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const workDir = mkdtempSync(join(tmpdir(), "tether-cluster-"));
  const logDir = options.logDir ?? join(workDir, "logs");
  mkdirSync(logDir, { recursive: true });
  const common = { cwd: ROOT, logDir, onLine: options.onLine };
  const env = { ...process.env, ...options.env };
  // The cluster's own setting, not an instance's (which would warn about an unknown TETHER_ name).
  delete env.TETHER_TLS_CERT;
  const tls = options.tls ?? true;
  const tlsCert = tls ? (options.tlsCert ?? clusterCertificate({ ...process.env, ...options.env })) : undefined;
  const apiKey = env.TETHER_API_KEY || randomBytes(24).toString("base64url");

  /** @type {Array<() => Promise<void>>} */
  const stops = [];
  /** @type {number[]} */
  const pids = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const step of stops.reverse()) await step();
    // Redis's data goes; the logs stay for reading afterwards.
    if (options.logDir) rmSync(workDir, { recursive: true, force: true });
    else for (const name of ["redis", "haproxy.sock"]) rmSync(join(workDir, name), { recursive: true, force: true });
  };

  try {
    const redisDir = join(workDir, "redis");
    mkdirSync(redisDir);
    const redis = await startRedis({ ...common, port: await freePort(), dir: redisDir, pids });
    stops.push(redis.stop);

    const ports = await freePorts(count);
    const instances = ports.map((port, index) =>
      instance({
        ...common,
        name: `tether${index + 1}`,
        port,
        command,
        readyTimeoutMs,
        pids,
        env: {
          ...env,
          TETHER_TRUST_PROXY: env.TETHER_TRUST_PROXY ?? "1",
          TETHER_API_KEY: apiKey,
          REDIS_URL: redis.url,
          PORT: String(port),
          HOST: "127.0.0.1",
          TETHER_INSTANCE_ID: `tether${index + 1}`,
        },
      }),
    );
    stops.push(async () => void (await Promise.all(instances.map((each) => each.stop()))));
    await Promise.all(instances.map((each) => each.start()));

    // The balancer's two ports at once: never the same one twice (see `freePorts`).
    const [lbPort, tlsPort] = /** @type {[number, number]} */ (await freePorts(2));
    const lb = await startHaproxy({
      ...common,
      config: HAPROXY_CONFIG,
      port: options.port ?? lbPort,
      tls: tlsCert ? { port: options.tlsPort ?? tlsPort, cert: tlsCert } : undefined,
      backends: ports.map((port) => `127.0.0.1:${port}`),
      env: options.lbEnv,
      adminSocket: join(workDir, "haproxy.sock"),
      pids,
    });
    stops.push(lb.stop);
    await Promise.all(instances.map((each) => lb.waitForServer(each.name, "UP", readyTimeoutMs)));

    const httpUrl = `http://127.0.0.1:${lb.port}`;
    return {
      url: lb.tlsPort ? `https://127.0.0.1:${lb.tlsPort}` : httpUrl,
      httpUrl,
      ca: tlsCert ? certificateOf(tlsCert) : undefined,
      apiKey,
      logDir,
      instances,
      redis,
      lb,
      pids: () => [...pids],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * One instance slot: a name and a port, and as many runs as it is started.
 * @param {object} options
 * @param {string} options.name
 * @param {number} options.port
 * @param {string[]} options.command
 * @param {NodeJS.ProcessEnv} options.env
 * @param {string} options.cwd
 * @param {string} options.logDir
 * @param {number} options.readyTimeoutMs
 * @param {number[]} options.pids      collects the pid of every run
 * @param {(name: string, line: string) => void} [options.onLine]
 * @returns {ClusterInstance}
 */
function instance({ name, port, command, env, cwd, logDir, readyTimeoutMs, pids, onLine }) {
  /** @type {ManagedProcess | undefined} */
  let proc;
  /** @type {number[]} */
  const runs = [];
  const url = `http://127.0.0.1:${port}`;
  return {
    name,
    port,
    url,
    get pid() {
      return proc?.pid;
    },
    get pids() {
      return [...runs];
    },
    get running() {
      return proc?.running ?? false;
    },
    async start() {
      if (proc?.running) throw new Error(`${name} is already running`);
      const run = new ManagedProcess(name, command, { env, cwd, logDir, onLine });
      proc = run;
      if (run.pid) {
        runs.push(run.pid);
        pids.push(run.pid);
      }
      await waitUntil(
        `${name} ready on port ${port}`,
        async () => {
          if (!run.running) throw new Fatal(`${name} exited (${run.describeExit()}):\n${run.tail()}`);
          return (await fetch(`${url}/readyz`)).ok;
        },
        { timeoutMs: readyTimeoutMs },
      );
    },
    async stop() {
      return (await proc?.stop())?.code ?? null;
    },
    async kill() {
      await proc?.kill();
    },
  };
}
