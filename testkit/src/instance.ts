import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { freePort } from "./ports.js";
import { waitFor } from "./wait.js";

/** The server's entry point, from source: what `npm start` runs once built. */
const SERVER_MAIN = join(dirname(createRequire(import.meta.url).resolve("@tether/server/package.json")), "src/main.ts");
/** Every instance's log lands here, so a test can grep all logs for secrets. */
export const LOG_DIR = process.env.TETHER_TEST_LOG_DIR ?? join(tmpdir(), "tether-test-logs");

/**
 * Admission's event-loop-delay criterion measures the machine, not the scenario: on a shared box
 * under load it refuses handshakes any test may make. The rate criterion, which a test can drive,
 * keeps its default (admission.test.ts); the delay one is a load property for the bench. For
 * instances a test runs in its own process (`createTether`) as well as for spawned ones.
 */
export const MACHINE_LOAD_ENV: Record<string, string> = { TETHER_ADMISSION_MAX_EVENT_LOOP_DELAY: "5s" };

/** Short TTLs and intervals so lifecycle tests take seconds. Rate limits and caps keep their defaults (on). */
export const FAST_ENV: Record<string, string> = {
  TETHER_WS_TOKEN_TTL: "2s",
  TETHER_PING_INTERVAL: "500ms",
  // How long a pong may take: a loaded machine can hold a test process for more than half a second,
  // and a socket closed for it fails a test about something else (raw sockets do not reconnect). A
  // test of silent deaths (a frozen process, a blackholed link) sets its own.
  TETHER_PING_TIMEOUT: "5s",
  TETHER_DRAIN_WINDOW: "300ms",
  TETHER_SHUTDOWN_TIMEOUT: "5s",
  ...MACHINE_LOAD_ENV,
  LOG_LEVEL: "info",
};

/** A Tether server running as its own process, exactly as `npm start` runs it. */
export interface TestInstance {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** kill -9 */
  kill(): Promise<void>;
  /** SIGTERM, and wait for the exit code. */
  stop(): Promise<number | null>;
  /** Starts a new process with the same port and environment. */
  restart(): Promise<void>;
}

let counter = 0;

/**
 * Spawns a server entry point from source (tsx), as `npm start` runs the built one, on
 * 127.0.0.1:`port` with the id `name`; its output is appended to LOG_DIR/<name>.log.
 */
export function spawnServer(
  main: string,
  name: string,
  port: number,
  env: Record<string, string>,
  fdLimit?: number,
): ChildProcess {
  mkdirSync(LOG_DIR, { recursive: true });
  const log = createWriteStream(join(LOG_DIR, `${name}.log`), { flags: "a" });
  const node = [process.execPath, "--conditions=source", "--import", "tsx", main];
  // prlimit execs node in place: the child's pid is the server's.
  const [command = "", ...args] = fdLimit === undefined ? node : ["prlimit", `--nofile=${fdLimit}:${fdLimit}`, ...node];
  const child = spawn(command, args, {
    env: { ...process.env, ...env, PORT: String(port), HOST: "127.0.0.1", TETHER_INSTANCE_ID: name },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  child.stderr?.on("data", (chunk: Buffer) => {
    if (chunk.includes("EADDRINUSE")) addressInUse.add(child);
  });
  return child;
}

/** Servers that exited because their port was taken meanwhile (a "free" port is free only for a moment). */
const addressInUse = new WeakSet<ChildProcess>();

/**
 * Resolves once the server `spawnServer` started answers /readyz; fails at once, naming its log, if
 * it exits. The deadline allows for a loaded machine: a start from source takes seconds there.
 */
export async function whenReady(child: ChildProcess, name: string, port: number, timeoutMs = 60_000): Promise<void> {
  let exited = false;
  await waitFor(
    `instance ${name} on port ${port}`,
    async () => {
      // Stops the wait (a throw here would only be retried until the deadline).
      exited = child.exitCode !== null || child.signalCode !== null;
      if (exited) return true;
      // Bounded: whoever else holds the port may accept and never answer. And it must be this
      // server: another test's, already on a port this one then fails to bind, answers too.
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2_000) });
      return res.ok && ((await res.json()) as { instance?: unknown }).instance === name;
    },
    { timeoutMs, intervalMs: 50 },
  );
  if (exited) throw new Error(`${name} exited with ${child.exitCode}; see ${LOG_DIR}/${name}.log`);
}

/**
 * Starts `server/src/main.ts` (from source) on a free port and waits until it is ready.
 * `main`: another entry point (a host app of the tests' own), run the same way; `fdLimit`:
 * the process's open-file limit (soft and hard, set with util-linux `prlimit`).
 */
export async function startInstance(
  env: Record<string, string>,
  options: { port?: number; main?: string; fdLimit?: number } = {},
): Promise<TestInstance> {
  let port = options.port ?? (await freePort());
  const name = env.TETHER_INSTANCE_ID ?? `test-${process.pid}-${++counter}`;
  let child!: ChildProcess;

  const launch = async () => {
    child = spawnServer(options.main ?? SERVER_MAIN, name, port, { ...FAST_ENV, ...env }, options.fdLimit);
    await whenReady(child, name, port);
  };
  // A port picked here may be taken before the server binds it (another test's server, or an
  // outgoing connection's ephemeral port): the first start takes another one.
  const firstStart = async (attemptsLeft: number): Promise<void> => {
    try {
      await launch();
    } catch (err) {
      if (options.port !== undefined || attemptsLeft <= 1 || !addressInUse.has(child)) throw err;
      port = await freePort();
      await firstStart(attemptsLeft - 1);
    }
  };

  const exit = (proc: ChildProcess) =>
    proc.exitCode !== null || proc.signalCode !== null
      ? Promise.resolve(proc.exitCode)
      : new Promise<number | null>((done) => proc.once("exit", (code) => done(code)));

  await firstStart(3);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get process() {
      return child;
    },
    async kill() {
      const done = exit(child);
      child.kill("SIGKILL");
      await done;
    },
    async stop() {
      const done = exit(child);
      child.kill("SIGTERM");
      return done;
    },
    restart: launch,
  };
}

/**
 * The API key a generated-key instance printed in its start banner (the latest one, after
 * restarts; `not`: other than this one): what a person reads off the console. `name` is its
 * TETHER_INSTANCE_ID.
 */
export async function bannerApiKey(name: string, options: { not?: string } = {}): Promise<string> {
  const log = join(LOG_DIR, `${name}.log`);
  // Its output reaches the log through a pipe that may lag the instance being ready: wait for it.
  return waitFor(`a new API key in ${log}`, () => {
    const keys = [...readFileSync(log, "utf8").matchAll(/API key \(generated[^)]*\): (\S+)/g)];
    const key = keys.at(-1)?.[1];
    return key !== options.not ? key : undefined;
  });
}
