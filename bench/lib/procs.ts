/**
 * The bench's child processes: spawned through here, they are always ended,
 * on success, on error and on Ctrl-C (SIGINT/SIGTERM/SIGHUP). Only a SIGKILL of
 * the bench itself can leave the server processes behind (IPC children still exit).
 */
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";

const children = new Set<ChildProcess>();
const cleanups: (() => void)[] = [];

/** Runs `fn` when the bench exits, however it exits. */
export function onExit(fn: () => void): void {
  cleanups.push(fn);
}

function killAll(): void {
  for (const child of children) child.kill("SIGKILL");
  children.clear();
  for (const fn of cleanups.splice(0)) {
    try {
      fn();
    } catch {
      // Best effort: the process is exiting.
    }
  }
}

process.once("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping every process it started\n`);
    killAll();
    process.exit(130);
  });
}

/** Spawns a tracked child. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, options);
  children.add(child);
  child.once("exit", () => children.delete(child));
  child.once("error", (err) => process.stderr.write(`bench: could not start ${command}: ${err.message}\n`));
  return child;
}

/** How a Node child is launched besides its script: flags (e.g. `--cpu-prof`) and modules preloaded after tsx. */
export interface NodeLaunch {
  nodeFlags?: string[];
  preload?: string[];
  /** Arguments after the script. */
  args?: string[];
  /**
   * Resolve the workspace packages to their build (`dist`, as `npm start` and the image run them)
   * instead of their TypeScript source. The script itself still runs under tsx.
   */
  built?: boolean;
}

/** Spawns TypeScript under Node: the workspace packages from source (as the tests run them) unless `built`. */
export function spawnNode(script: string, options: SpawnOptions, launch: NodeLaunch = {}): ChildProcess {
  const preload = (launch.preload ?? []).flatMap((module) => ["--import", module]);
  const args = [
    ...(launch.nodeFlags ?? []),
    ...(launch.built ? [] : ["--conditions=source"]),
    "--import",
    "tsx",
    ...preload,
    script,
    ...(launch.args ?? []),
  ];
  return spawnTracked(process.execPath, args, options);
}

/** Resolves with the exit code once the child has exited. */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** Rejects if the child exits first: for waits that would otherwise only time out. */
export async function whileAlive<T>(child: ChildProcess, what: string, work: Promise<T>): Promise<T> {
  const died = exited(child).then((code) => {
    throw new Error(`${what} exited with ${code} while starting`);
  });
  return Promise.race([work, died]);
}

/** SIGTERM (a clean exit writes CPU profiles), then SIGKILL after `graceMs`. */
export async function stop(child: ChildProcess, graceMs = 5_000): Promise<void> {
  const done = exited(child);
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await done;
  clearTimeout(timer);
}
