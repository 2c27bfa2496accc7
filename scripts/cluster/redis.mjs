// The cluster's redis-server: on a free port of 127.0.0.1, with an append-only
// file in its own directory, so a restart of Redis keeps every session.
import { createConnection } from "node:net";
import { Fatal, ManagedProcess, waitUntil } from "./process.mjs";

/**
 * @typedef {object} ClusterRedis
 * @property {string} url
 * @property {number} port
 * @property {string} dir            data directory (appendonly files)
 * @property {number | undefined} pid
 * @property {boolean} running
 * @property {() => Promise<void>} start   starts it again (same port, same data)
 * @property {() => Promise<void>} stop    SIGTERM (Redis flushes the AOF) and wait
 * @property {() => Promise<void>} kill    SIGKILL and wait
 */

/**
 * @param {object} options
 * @param {number} options.port
 * @param {string} options.dir
 * @param {string} options.logDir
 * @param {string} [options.binary]
 * @param {string} options.cwd
 * @param {number[]} options.pids   collects the pid of every run
 * @param {(name: string, line: string) => void} [options.onLine]
 * @returns {Promise<ClusterRedis>}
 */
export async function startRedis({ port, dir, logDir, binary = "redis-server", cwd, pids, onLine }) {
  // biome-ignore format: one option per line
  const args = [
    "--port", String(port),
    "--bind", "127.0.0.1",
    "--dir", dir,
    "--appendonly", "yes",
    "--appendfsync", "everysec",
    "--save", "",
    "--daemonize", "no",
    "--loglevel", "warning",
  ];
  /** @type {ManagedProcess | undefined} */
  let proc;

  const start = async () => {
    const run = new ManagedProcess("redis", [binary, ...args], { env: process.env, cwd, logDir, onLine });
    proc = run;
    if (run.pid) pids.push(run.pid);
    try {
      await waitUntil(`redis-server on port ${port}`, async () => {
        if (!run.running) throw new Fatal(`redis-server exited (${run.describeExit()}):\n${run.tail()}`);
        return (await ping(port)) === "+PONG";
      });
    } catch (err) {
      await run.kill();
      throw err;
    }
  };
  await start();

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return proc?.pid;
    },
    get running() {
      return proc?.running ?? false;
    },
    start,
    stop: async () => void (await proc?.stop()),
    kill: async () => void (await proc?.kill()),
  };
}

/**
 * Sends PING over RESP; resolves with the reply line.
 * @param {number} port
 * @returns {Promise<string>}
 */
function ping(port) {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    socket.setTimeout(1_000, () => socket.destroy(new Error("no reply")));
    socket.once("error", reject);
    socket.on("data", (chunk) => {
      reply += chunk.toString("utf8");
      if (reply.includes("\r\n")) {
        socket.end();
        resolve(reply.split("\r\n")[0] ?? "");
      }
    });
    socket.once("connect", () => socket.write("PING\r\n"));
  });
}
