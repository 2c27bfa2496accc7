#!/usr/bin/env node
// `npm run cluster`: what `docker compose up` runs, on this machine without
// Docker: redis-server, three Tether instances and HAProxy with
// deploy/haproxy.cfg terminating TLS, in the foreground until Ctrl-C or SIGTERM
// (to this process or to npm, which forwards it).
//
//   npm run cluster -- --instances 5   same as CLUSTER_INSTANCES=5
//   CLUSTER_PORT=8080       the load balancer's plain HTTP port on 127.0.0.1 (redirects to HTTPS)
//   CLUSTER_TLS_PORT=8443   its HTTPS port
//   TETHER_TLS_CERT         PEM (certificate and key) to serve; default: a self-signed
//                           one made at first start in .cluster/tls.pem
//   CLUSTER_INSTANCES=3     1 to 8
//   CLUSTER_LOGS=files      `stdout` to also print every process's output, prefixed
//   CLUSTER_SOURCE=0        1 runs the instances from the TypeScript sources (no build)
// Tether's own settings (TETHER_*, LOG_LEVEL) pass through to every instance.
import { MAX_INSTANCES } from "./cluster/haproxy.mjs";
import { SOURCE_COMMAND, startCluster } from "./cluster/start.mjs";

/** `--instances N` or `--instances=N` on the command line wins over CLUSTER_INSTANCES. */
function instancesArgument() {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg === "--instances") return args[i + 1] ?? "";
    if (arg.startsWith("--instances=")) return arg.slice("--instances=".length);
    process.stderr.write(`cluster: unknown argument "${arg}" (usage: npm run cluster -- --instances N)\n`);
    process.exit(1);
  }
  return undefined;
}

/**
 * @param {string} name
 * @param {number} fallback
 * @param {number} max
 * @param {string} [given]   from the command line, over the environment
 */
function integerSetting(name, fallback, max, given) {
  const text = given ?? process.env[name];
  if (text === undefined || text.trim() === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > max) {
    process.stderr.write(`cluster: ${name} must be an integer from 1 to ${max} (got "${text}")\n`);
    process.exit(1);
  }
  return value;
}

const port = integerSetting("CLUSTER_PORT", 8080, 65_535);
const tlsPort = integerSetting("CLUSTER_TLS_PORT", 8443, 65_535);
const instances = integerSetting("CLUSTER_INSTANCES", 3, MAX_INSTANCES, instancesArgument());
/** @param {string} name */
const setting = (name) => process.env[name]?.trim() ?? "";
const echo = setting("CLUSTER_LOGS") === "stdout";
const fromSource = setting("CLUSTER_SOURCE") === "1";
const width = "haproxy".length;

let cluster;
try {
  cluster = await startCluster({
    instances,
    port,
    tlsPort,
    command: fromSource ? SOURCE_COMMAND : undefined,
    onLine: echo ? (name, line) => process.stdout.write(`${name.padEnd(width)} | ${line}\n`) : undefined,
  });
} catch (err) {
  process.stderr.write(`cluster: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

const rows = [
  "",
  `  Tether cluster on ${cluster.url}  (HAProxy → ${instances} instance${instances > 1 ? "s" : ""} → Redis)`,
  `  API key: ${cluster.apiKey}`,
  `  ${cluster.httpUrl} redirects there. The certificate: ${setting("TETHER_TLS_CERT") || "self-signed, .cluster/tls.pem (trust it or set TETHER_TLS_CERT)"}`,
  "",
  ...cluster.instances.map((each) => `    ${each.name.padEnd(width)}  ${each.url}  pid ${each.pid}`),
  `    ${"redis".padEnd(width)}  ${cluster.redis.url}  pid ${cluster.redis.pid}`,
  `    ${"haproxy".padEnd(width)}  ${cluster.url}  pid ${cluster.lb.pid}`,
  "",
  `  Logs: ${cluster.logDir}`,
  "  Ctrl-C stops everything.",
  "",
];
process.stdout.write(`${rows.join("\n")}\n`);

let stopping = false;
/** @param {NodeJS.Signals} signal */
const shutdown = (signal) => {
  if (stopping) {
    process.stderr.write("cluster: still stopping (instances are draining)…\n");
    return;
  }
  stopping = true;
  process.stdout.write(`\ncluster: ${signal}: stopping the instances, then HAProxy and Redis…\n`);
  cluster.stop().then(
    () => {
      process.stdout.write("cluster: stopped\n");
      process.exit(0);
    },
    (err) => {
      process.stderr.write(`cluster: stop failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on("SIGINT", () => shutdown("SIGINT"));
process.on("SIGTERM", () => shutdown("SIGTERM"));
