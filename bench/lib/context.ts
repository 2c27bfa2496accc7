/**
 * What every scenario shares: the client workers, each system's redis-server,
 * the simulated users (each with its own source address and, once logged in,
 * its own session per system), and helpers to open and close their sockets.
 */
import { join } from "node:path";
import type { TestRedis } from "@tether/testkit/redis";
import { LOGIN_PATH, type SystemName } from "./instances.js";
import { Peer } from "./ipc.js";
import { settle } from "./proc-stats.js";
import { spawnNode } from "./procs.js";
import type { ClientMode, ClientSpec, Target, WorkerProtocol } from "./protocol.js";

export type Worker = Peer<WorkerProtocol>;

/** Source addresses of simulated users: 127.0.0.2 … 127.0.0.250 (Linux routes 127/8 to loopback). */
export const FIRST_ADDRESS = 2;
export const ADDRESSES = 249;

export const addressOf = (user: number) => `127.0.0.${FIRST_ADDRESS + (user % ADDRESSES)}`;

export interface Bench {
  workers: Worker[];
  redis: Record<SystemName, TestRedis>;
  /** Session cookie of user i, per system (logged in on first use, reused by every later scenario). */
  cookies: Record<SystemName, string[]>;
  quick: boolean;
  nodeFlags: string[];
  progress(text: string): void;
  /** Things a reader of the results must know (skipped variants, fallbacks). */
  notes: string[];
}

/** Client processes, so the clients' CPU never counts as a server's. */
export function startWorkers(count: number): Promise<Worker[]> {
  const script = join(import.meta.dirname, "..", "client-worker.ts");
  const start = () => spawnNode(script, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return Promise.all(Array.from({ length: count }, async () => (await Peer.connect<WorkerProtocol>(start())).peer));
}

/** The worker that holds user i's sockets (a browser's tabs live in one process). */
const workerOf = (bench: Bench, user: number) => user % bench.workers.length;

/**
 * Makes sure users [from, to) have a session on `system`, logging in the missing
 * ones through `url`, each from its own address; the login limit (20 per address
 * a minute by default) is waited out, not switched off.
 */
export async function ensureLogins(bench: Bench, system: SystemName, url: string, to: number, from = 0): Promise<void> {
  const missing: number[] = [];
  for (let user = from; user < to; user++) if (bench.cookies[system][user] === undefined) missing.push(user);
  if (missing.length === 0) return;
  const started = performance.now();
  const results = await Promise.all(
    bench.workers.map(async (worker, w) => {
      const mine = missing.filter((user) => workerOf(bench, user) === w);
      const users = mine.map((user) => ({ user: `u${user}`, address: addressOf(user) }));
      const { cookies, rateLimited } = await worker.request("login", {
        url,
        path: LOGIN_PATH[system],
        users,
        concurrency: 16,
      });
      return { mine, cookies, rateLimited };
    }),
  );
  let rateLimited = 0;
  for (const result of results) {
    result.mine.forEach((user, i) => {
      bench.cookies[system][user] = result.cookies[i] ?? "";
    });
    rateLimited += result.rateLimited;
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  bench.progress(`${system}: ${missing.length} logins in ${seconds}s (${rateLimited} answered 429 and waited)`);
}

/** Sockets for users [from, to), `tabs` each, grouped by worker ("bare": no session, no cookie). */
export function specsFor(
  bench: Bench,
  system: SystemName | "bare",
  from: number,
  to: number,
  tabs: number,
): ClientSpec[][] {
  const perWorker: ClientSpec[][] = bench.workers.map(() => []);
  for (let user = from; user < to; user++) {
    const cookie = system === "bare" ? "" : bench.cookies[system][user];
    if (cookie === undefined) throw new Error(`user ${user} has no ${system} session`);
    for (let tab = 0; tab < tabs; tab++) {
      perWorker[workerOf(bench, user)]?.push({ user: `u${user}`, cookie, address: addressOf(user) });
    }
  }
  return perWorker;
}

export interface Opened {
  opened: number;
  failed: number;
  /** Handshakes turned away with a retry hint and waited out (they cost time, not CPU). */
  hinted: number;
  firstError: string | undefined;
  latenciesMs: number[];
}

/** Failed connects tolerated (and reported) before a measurement is thrown away. */
const MAX_FAILED_SHARE = 0.01;

/** Opens the sockets, `concurrency` in flight in all, each worker its own share. */
export async function openSockets(
  bench: Bench,
  target: Target | ((user: string) => Target),
  perWorker: ClientSpec[][],
  concurrency: number,
  // What the SDK does in a browser on a first connect: the session cookie, no token request.
  mode: ClientMode = { reconnect: false, tickets: false, cookie: true },
): Promise<Opened> {
  const total = perWorker.reduce((sum, specs) => sum + specs.length, 0);
  const requests = bench.workers.flatMap((worker, w) => {
    const specs = perWorker[w] ?? [];
    if (specs.length === 0) return [];
    const lanes = Math.max(1, Math.round((concurrency * specs.length) / total));
    if (typeof target !== "function")
      return [worker.request("open", { target, clients: specs, concurrency: lanes, mode })];
    // One request per target (fan-out: each user's sockets go to its own instance).
    const byUrl = new Map<string, { target: Target; specs: ClientSpec[] }>();
    for (const spec of specs) {
      const t = target(spec.user);
      const group = byUrl.get(t.url) ?? { target: t, specs: [] };
      group.specs.push(spec);
      byUrl.set(t.url, group);
    }
    return [...byUrl.values()].map((group) =>
      worker.request("open", { target: group.target, clients: group.specs, concurrency: lanes, mode }),
    );
  });
  const results = await Promise.all(requests);
  const opened: Opened = { opened: 0, failed: 0, hinted: 0, firstError: undefined, latenciesMs: [] };
  for (const result of results) {
    opened.opened += result.opened;
    opened.failed += result.failed;
    opened.hinted += result.hinted;
    opened.firstError ??= result.firstError;
    opened.latenciesMs.push(...result.latenciesMs);
  }
  if (opened.failed > 0) {
    const why = `${opened.failed} of ${total} connects failed (first: ${opened.firstError})`;
    if (opened.failed > total * MAX_FAILED_SHARE) throw new Error(why);
    bench.progress(`warning: ${why}`);
  }
  return opened;
}

/** Closes the workers' idle keep-alive HTTP connections (the sockets stay). */
export async function dropHttp(bench: Bench): Promise<void> {
  await Promise.all(bench.workers.map((worker) => worker.request("dropHttp", {})));
}

/** Closes every socket the workers hold, then waits for `pids` to go quiet. */
export async function closeSockets(bench: Bench, pids: number[]): Promise<void> {
  await Promise.all(bench.workers.map((worker) => worker.request("close", {})));
  await settle(pids, { maxMs: 10_000 });
}

/** Sums the workers' counters (and zeroes them). */
export async function counters(bench: Bench) {
  const all = await Promise.all(bench.workers.map((worker) => worker.request("counters", {})));
  const errors: Record<string, number> = {};
  for (const c of all) for (const [code, n] of Object.entries(c.errors)) errors[code] = (errors[code] ?? 0) + n;
  const sum = (pick: (c: (typeof all)[number]) => number) => all.reduce((total, c) => total + pick(c), 0);
  return {
    tokenRequests: sum((c) => c.tokenRequests),
    ticketHandshakes: sum((c) => c.ticketHandshakes),
    cookieHandshakes: sum((c) => c.cookieHandshakes),
    ticketsRefused: sum((c) => c.ticketsRefused),
    ticketsOffered: sum((c) => c.ticketsOffered),
    received: sum((c) => c.received),
    errors,
  };
}

/** The q-quantile (0…1) of a list, nearest rank. */
export function quantile(values: number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Systems in the order of round `round`: alternating, so a noisy machine's drift hits both alike. */
export function inOrder<T>(items: T[], round: number): T[] {
  return round % 2 === 0 ? items : [...items].reverse();
}
