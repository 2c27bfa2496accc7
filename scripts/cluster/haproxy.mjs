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
 * @property {string} addr     ip:port it sends to now ("" while a discovered slot is empty)
 * @property {number} chkfail  health checks failed so far
 * @property {number} chkdown  times it went from UP to DOWN so far
 */

/**
 * @typedef {object} ClusterLb
 * @property {number} port               plain HTTP (redirects to HTTPS when TLS is on)
 * @property {number | undefined} tlsPort
 * @property {number | undefined} pid    of the process serving now
 * @property {string} adminSocket
 * @property {() => Promise<ServerState[]>} servers      the backend's servers as HAProxy sees them now
 * @property {(name: string, status: string, timeoutMs?: number) => Promise<void>} waitForServer
 * @property {() => Promise<void>} reload
 *   a soft reload, as after a config change: a new process takes the listeners
 *   (`-sf <old pid>`), the old one finishes its connections (WebSockets until
 *   LB_HARD_STOP_AFTER); resolves once the new one answers
 * @property {() => Promise<void>} restart   stop (every connection cut) and start again, same ports
 * @property {() => Promise<void>} stop
 */

/**
 * @typedef {object} Discovery
 * @property {string} address      name:port that resolves to every instance
 * @property {string} nameserver   ip:port of the DNS server to ask
 * @property {number} [slots]      servers HAProxy keeps room for (default 16)
 */

/**
 * @param {object} options
 * @param {string} options.config            path of deploy/haproxy.cfg
 * @param {number} options.port
 * @param {{ port: number, cert: string }} [options.tls]   HTTPS listener and its PEM (certificate and key)
 * @param {string[]} [options.backends]      host:port of each instance, in slot order
 * @param {Discovery} [options.discover]     or: find the instances through DNS, as compose does
 * @param {Record<string, string>} [options.env]   more of the config's variables (e.g. LB_HARD_STOP_AFTER)
 * @param {string} options.adminSocket
 * @param {string} options.logDir
 * @param {string} options.cwd
 * @param {number[]} [options.pids]   collects the pid of every run
 * @param {string} [options.binary]
 * @param {(name: string, line: string) => void} [options.onLine]
 * @returns {Promise<ClusterLb>}
 */
export async function startHaproxy({
  config,
  port,
  tls,
  backends = [],
  discover,
  env: extra = {},
  adminSocket,
  logDir,
  cwd,
  pids = [],
  binary = "haproxy",
  onLine,
}) {
  if (!discover && (backends.length < 1 || backends.length > MAX_INSTANCES)) {
    throw new Error(`between 1 and ${MAX_INSTANCES} instances, not ${backends.length}`);
  }
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, ...extra, LB_BIND: `127.0.0.1:${port}`, LB_ADMIN_SOCKET: adminSocket };
  for (const name of ["LB_TLS_CERT", "LB_TLS_BIND", "LB_HTTPS_PORT", "LB_DISCOVER", "LB_NAMESERVER"]) {
    if (!(name in extra)) delete env[name];
  }
  for (let slot = 1; slot <= MAX_INSTANCES; slot++) delete env[`TETHER${slot}_ADDR`];
  backends.forEach((address, index) => {
    env[`TETHER${index + 1}_ADDR`] = address;
  });
  if (tls)
    Object.assign(env, {
      LB_TLS_CERT: tls.cert,
      LB_TLS_BIND: `127.0.0.1:${tls.port}`,
      LB_HTTPS_PORT: String(tls.port),
    });
  if (discover) {
    Object.assign(env, { LB_DISCOVER: discover.address, LB_NAMESERVER: discover.nameserver });
    if (discover.slots) env.LB_DISCOVER_SLOTS = String(discover.slots);
  }

  const servers = async () => parseServers(await adminCommand(adminSocket, "show stat"));
  /** @param {ManagedProcess} proc */
  const died = (proc) => new Fatal(`haproxy exited (${proc.describeExit()}):\n${proc.tail()}`);
  /** @type {ManagedProcess} */
  let proc;
  /** Old processes still finishing their connections after a reload. */
  const finishing = new Set();

  /** @param {string[]} more  extra arguments (-sf <pid>) */
  const launch = async (more = []) => {
    // -db: stay in the foreground, one process; SIGTERM stops it at once.
    const run = new ManagedProcess("haproxy", [binary, "-db", "-f", config, ...more], { env, cwd, logDir, onLine });
    proc = run;
    if (run.pid) pids.push(run.pid);
    try {
      await waitUntil("haproxy's admin socket", async () => {
        if (!run.running) throw died(run);
        // The socket path is the old process's until the new one has taken it.
        const info = await adminCommand(adminSocket, "show info");
        if (!info.includes(`\nPid: ${run.pid}\n`)) return false;
        const found = await servers();
        return discover ? found.length > 0 : found.length === backends.length;
      });
    } catch (err) {
      await run.kill();
      throw err;
    }
  };

  /** @type {ClusterLb["waitForServer"]} */
  const waitForServer = (name, status, timeoutMs = 30_000) =>
    waitUntil(
      `HAProxy to see ${name} ${status}`,
      async () => {
        if (!proc.running) throw died(proc);
        return (await servers()).some((server) => server.name === name && server.status === status);
      },
      { timeoutMs, intervalMs: 100 },
    );

  await launch();
  return {
    port,
    tlsPort: tls?.port,
    get pid() {
      return proc.pid;
    },
    adminSocket,
    servers,
    waitForServer,
    reload: async () => {
      const old = proc;
      finishing.add(old);
      old.exited.then(() => finishing.delete(old));
      await launch(["-sf", String(old.pid)]);
    },
    restart: async () => {
      await proc.stop("SIGTERM");
      await launch();
    },
    stop: async () => {
      await Promise.all([proc, ...finishing].map((each) => each.stop("SIGTERM")));
    },
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
    .map((cells) => ({
      name: cells[at("svname")] ?? "",
      status: cells[at("status")] ?? "",
      addr: cells[at("addr")] ?? "",
      chkfail: Number(cells[at("chkfail")] ?? 0),
      chkdown: Number(cells[at("chkdown")] ?? 0),
    }));
}
