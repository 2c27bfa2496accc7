// The cluster's load balancer: HAProxy with deploy/haproxy.cfg, the file
// compose mounts, its addresses given through environment variables.
import { createConnection } from "node:net";
import { Fatal, ManagedProcess, waitUntil } from "./process.mjs";

/** Server slots in deploy/haproxy.cfg (TETHER1_ADDR … TETHER8_ADDR). */
export const MAX_INSTANCES = 8;

/**
 * @typedef {object} ServerState
 * @property {string} name     tether1, tether2, …
 * @property {string} status   as HAProxy reports it: "UP", "DOWN", "UP 1/2" (going down), "MAINT", …
 */

/**
 * @typedef {object} ClusterLb
 * @property {number} port
 * @property {number | undefined} pid
 * @property {string} adminSocket
 * @property {() => Promise<ServerState[]>} servers      the backend's servers as HAProxy sees them now
 * @property {(name: string, status: string, timeoutMs?: number) => Promise<void>} waitForServer
 * @property {() => Promise<void>} stop
 */

/**
 * @param {object} options
 * @param {string} options.config            path of deploy/haproxy.cfg
 * @param {number} options.port
 * @param {string[]} options.backends        host:port of each instance, in slot order
 * @param {string} options.adminSocket
 * @param {string} options.logDir
 * @param {string} options.cwd
 * @param {string} [options.binary]
 * @param {(name: string, line: string) => void} [options.onLine]
 * @returns {Promise<ClusterLb>}
 */
export async function startHaproxy({ config, port, backends, adminSocket, logDir, cwd, binary = "haproxy", onLine }) {
  if (backends.length < 1 || backends.length > MAX_INSTANCES) {
    throw new Error(`between 1 and ${MAX_INSTANCES} instances, not ${backends.length}`);
  }
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, LB_BIND: `127.0.0.1:${port}`, LB_ADMIN_SOCKET: adminSocket };
  for (let slot = 1; slot <= MAX_INSTANCES; slot++) delete env[`TETHER${slot}_ADDR`];
  backends.forEach((address, index) => {
    env[`TETHER${index + 1}_ADDR`] = address;
  });
  // -db: stay in the foreground, one process; SIGTERM stops it at once.
  const proc = new ManagedProcess("haproxy", [binary, "-db", "-f", config], { env, cwd, logDir, onLine });

  const servers = async () => parseServers(await adminCommand(adminSocket, "show stat"));
  /** @type {ClusterLb["waitForServer"]} */
  const waitForServer = (name, status, timeoutMs = 30_000) =>
    waitUntil(
      `HAProxy to see ${name} ${status}`,
      async () => {
        if (!proc.running) throw new Fatal(`haproxy exited (${proc.describeExit()}):\n${proc.tail()}`);
        return (await servers()).some((server) => server.name === name && server.status === status);
      },
      { timeoutMs, intervalMs: 100 },
    );

  try {
    await waitUntil("haproxy's admin socket", async () => {
      if (!proc.running) throw new Fatal(`haproxy exited (${proc.describeExit()}):\n${proc.tail()}`);
      return (await servers()).length === backends.length;
    });
  } catch (err) {
    await proc.kill();
    throw err;
  }
  return {
    port,
    get pid() {
      return proc.pid;
    },
    adminSocket,
    servers,
    waitForServer,
    stop: async () => void (await proc.stop("SIGTERM")),
  };
}

/**
 * Sends one command to HAProxy's runtime API and returns the whole answer.
 * @param {string} socketPath
 * @param {string} command
 * @returns {Promise<string>}
 */
export function adminCommand(socketPath, command) {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let answer = "";
    socket.setTimeout(2_000, () => socket.destroy(new Error(`no answer to "${command}"`)));
    socket.setEncoding("utf8");
    socket.once("error", reject);
    socket.on("data", (chunk) => {
      answer += chunk;
    });
    socket.once("end", () => resolve(answer));
    socket.once("connect", () => socket.write(`${command}\n`));
  });
}

/**
 * The servers of backend `tether` from `show stat` CSV.
 * @param {string} csv
 * @returns {ServerState[]}
 */
function parseServers(csv) {
  const [header, ...rows] = csv.trim().split("\n");
  const columns = (header ?? "").replace(/^# /, "").split(",");
  const at = (/** @type {string} */ name) => columns.indexOf(name);
  return rows
    .map((row) => row.split(","))
    .filter((cells) => cells[at("pxname")] === "tether" && !["FRONTEND", "BACKEND"].includes(cells[at("svname")] ?? ""))
    .map((cells) => ({ name: cells[at("svname")] ?? "", status: cells[at("status")] ?? "" }));
}
