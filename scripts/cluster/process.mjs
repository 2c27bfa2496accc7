// Child processes for the local cluster: spawned in their own process group
// (a Ctrl-C in the terminal reaches only the cluster script, which then stops
// them in order), output to a log file, stopped by pid with a deadline.
import { spawn } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

/** How long a process gets after SIGTERM before SIGKILL: above Tether's TETHER_SHUTDOWN_TIMEOUT default (30 s). */
export const STOP_TIMEOUT_MS = 35_000;

/**
 * @typedef {object} Exit
 * @property {number | null} code
 * @property {NodeJS.Signals | null} signal
 */

/**
 * One run of one program. A new run (after a restart) is a new ManagedProcess.
 */
export class ManagedProcess {
  /** @type {Set<ManagedProcess>} every process not yet exited, for the last-resort cleanup */
  static live = new Set();

  /**
   * @param {string} name       label, and the log file's name
   * @param {string[]} argv     program and arguments
   * @param {object} options
   * @param {NodeJS.ProcessEnv} options.env
   * @param {string} options.cwd
   * @param {string} options.logDir
   * @param {(name: string, line: string) => void} [options.onLine]  also receives every output line
   */
  constructor(name, argv, { env, cwd, logDir, onLine }) {
    const [program, ...args] = argv;
    if (!program) throw new Error(`${name}: empty command`);
    this.name = name;
    this.logFile = join(logDir, `${name}.log`);
    const log = createWriteStream(this.logFile, { flags: "a" });
    this.child = spawn(program, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    /** @type {Exit | undefined} */
    this.exit = undefined;
    /** @type {Promise<Exit>} */
    this.exited = new Promise((resolve) => {
      this.child.once("error", (err) => {
        log.write(`${name}: ${err.message}\n`);
        this.exit = { code: -1, signal: null };
        ManagedProcess.live.delete(this);
        resolve(this.exit);
      });
      this.child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        ManagedProcess.live.delete(this);
        resolve(this.exit);
      });
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream?.pipe(log, { end: false });
      if (onLine) lines(stream, (line) => onLine(name, line));
    }
    this.exited.then(() => setImmediate(() => log.end()));
    ManagedProcess.live.add(this);
  }

  /** @returns {number | undefined} */
  get pid() {
    return this.child.pid;
  }

  get running() {
    return this.exit === undefined;
  }

  /** "running", "code 0", "signal SIGKILL"… */
  describeExit() {
    if (!this.exit) return "running";
    return this.exit.signal ? `signal ${this.exit.signal}` : `code ${this.exit.code}`;
  }

  /**
   * Sends `signal` and waits for the exit; SIGKILL after `timeoutMs`.
   * @param {NodeJS.Signals} [signal]
   * @param {number} [timeoutMs]
   * @returns {Promise<Exit>}
   */
  async stop(signal = "SIGTERM", timeoutMs = STOP_TIMEOUT_MS) {
    if (!this.running) return this.exited;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  /** SIGKILL, and wait for the exit. */
  kill() {
    return this.stop("SIGKILL");
  }

  /** The end of the log, for error messages. */
  tail(lineCount = 15) {
    try {
      return readFileSync(this.logFile, "utf8").trimEnd().split("\n").slice(-lineCount).join("\n");
    } catch {
      return "";
    }
  }
}

// If the cluster's own process exits without stopping it (an uncaught error),
// take the children down with it rather than leave them running.
process.once("exit", () => {
  for (const proc of ManagedProcess.live) proc.child.kill("SIGKILL");
});

/**
 * Calls `onLine` for every complete line of a stream.
 * @param {import("node:stream").Readable | null} stream
 * @param {(line: string) => void} onLine
 */
function lines(stream, onLine) {
  let rest = "";
  stream?.setEncoding("utf8");
  stream?.on("data", (chunk) => {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    for (const part of parts) onLine(part);
  });
  stream?.on("end", () => rest && onLine(rest));
}

/**
 * A TCP port that was free on 127.0.0.1 a moment ago.
 * @returns {Promise<number>}
 */
export async function freePort() {
  const [port] = await freePorts(1);
  return /** @type {number} */ (port);
}

/**
 * `count` TCP ports that were free on 127.0.0.1 a moment ago, all different: each is held
 * until all are known. Asked for one after another, the kernel can hand out the same port
 * twice, and HAProxy binds with SO_REUSEPORT: its HTTP and HTTPS frontends would then share
 * one port, and a TLS client would reach the plain one ("wrong version number").
 * @param {number} count
 * @returns {Promise<number[]>}
 */
export async function freePorts(count) {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (server) =>
          new Promise((resolve, reject) => {
            server.once("error", reject);
            server.listen(0, "127.0.0.1", () => {
              const address = server.address();
              resolve(typeof address === "object" && address ? address.port : 0);
            });
          }),
      ),
    );
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(() => resolve(undefined)))));
  }
}

/**
 * Polls `check` until it returns true, or fails naming what it waited for.
 * A check that throws a `Fatal` error stops the wait at once.
 * @param {string} what
 * @param {() => boolean | Promise<boolean>} check
 * @param {{ timeoutMs?: number, intervalMs?: number }} [options]
 */
export async function waitUntil(what, check, { timeoutMs = 30_000, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  /** @type {unknown} */
  let last;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      if (err instanceof Fatal) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      const reason = last instanceof Error ? `: ${last.message}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** An error that ends a `waitUntil` at once (the process it waits for has died). */
export class Fatal extends Error {}
