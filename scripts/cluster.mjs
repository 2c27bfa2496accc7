#!/usr/bin/env node
// `npm run cluster`: what `docker compose up` runs, on this machine without
// Docker: redis-server, three Tether instances and HAProxy with
// deploy/haproxy.cfg, in the foreground until Ctrl-C or SIGTERM.
//
//   CLUSTER_PORT=8080       the load balancer's port on 127.0.0.1
//   CLUSTER_INSTANCES=3     1 to 8
//   CLUSTER_LOGS=files      `stdout` to also print every process's output, prefixed
//   CLUSTER_SOURCE=0        1 runs the instances from the TypeScript sources (no build)
// Tether's own settings (TETHER_*, LOG_LEVEL) pass through to every instance.
import { MAX_INSTANCES } from "./cluster/haproxy.mjs";
import { SOURCE_COMMAND, startCluster } from "./cluster/start.mjs";

/**
 * @param {string} name
 * @param {number} fallback
 * @param {number} max
 */
function integerSetting(name, fallback, max) {
  const text = process.env[name];
  if (text === undefined || text.trim() === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > max) {
    process.stderr.write(`cluster: ${name} must be an integer from 1 to ${max} (got "${text}")\n`);
    process.exit(1);
  }
  return value;
}

const port = integerSetting("CLUSTER_PORT", 8080, 65_535);
const instances = integerSetting("CLUSTER_INSTANCES", 3, MAX_INSTANCES);
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
