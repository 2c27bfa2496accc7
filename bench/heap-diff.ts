/**
 * Where a socket's memory goes: heap snapshots of one server at `sockets / 2`
 * and at `sockets` idle sockets, and the difference per socket of the second
 * half, by constructor (objects), closure name, or kind (strings, arrays, code),
 * largest first. The per-object accounting behind BENCHMARKS.md's KiB breakdown. Runs the
 * build (`npm run build` first). `tether-bare` measures both, one after the other, and prints
 * Tether's rows less bare Socket.IO's: what Tether holds per socket above the floor.
 * `--keep` keeps the snapshots (for Chrome DevTools' comparison view); `--by-kind` groups by what
 * an object is only, not also by what holds it; `--by-holder` by what holds it one level up only.
 *
 * @example
 * node --conditions=source --import tsx bench/heap-diff.ts tether|plain|bare|tether-bare 4000 [tabs] [top]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "@tether/testkit/wait";
import {
  type Bench,
  closeSockets,
  dropHttp,
  ensureLogins,
  openSockets,
  specsFor,
  startWorkers,
} from "./lib/context.js";
import { type Instance, type ServerKind, startBare, startInstance } from "./lib/instances.js";
import { settle } from "./lib/proc-stats.js";
import { stop } from "./lib/procs.js";
import { startBenchRedis } from "./lib/redis.js";

const BY_KIND = process.argv.includes("--by-kind");
const BY_HOLDER = process.argv.includes("--by-holder");

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Socket.IO's and Engine.IO's ids (base64id: 20 characters). */
const ID = /^(?=.*[A-Z0-9])[\w-]{20}$/;

/**
 * Self size and count per key: an object by its constructor and its first property names, any
 * other node (arrays, hash tables, closures, strings, contexts) by its kind and what holds it
 * (the first strong retainer's kind and the edge's name), so "a Map's table" reads as whose Map.
 */
function summarize(file: string): Map<string, { count: number; bytes: number }> {
  const snap = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const { node_fields: fields, node_types, edge_fields, edge_types } = snap.snapshot.meta;
  const types = node_types[0];
  const edgeKinds = edge_types[0];
  const at = (name: string) => fields.indexOf(name);
  const [typeAt, nameAt, sizeAt, edgeCountAt] = [at("type"), at("name"), at("self_size"), at("edge_count")];
  const [edgeTypeAt, edgeNameAt, edgeToAt] = ["type", "name_or_index", "to_node"].map((f) =>
    edge_fields.indexOf(f),
  ) as [number, number, number];
  const width = fields.length;
  const edgeWidth = edge_fields.length;
  const count = snap.nodes.length / width;
  const kind = (n: number) => types[snap.nodes[n * width + typeAt] ?? 0] ?? "?";
  const name = (n: number) => snap.strings[snap.nodes[n * width + nameAt] ?? 0] ?? "?";
  // Per node: its first strong retainer and the edge's name; per object: its first property names.
  const retainer = new Int32Array(count).fill(-1);
  const retainerEdge: string[] = new Array(count);
  const props: string[] = new Array(count);
  let edge = 0;
  for (let n = 0; n < count; n++) {
    const edges = snap.nodes[n * width + edgeCountAt] ?? 0;
    const names: string[] = [];
    for (let e = 0; e < edges; e++, edge += edgeWidth) {
      const type = edgeKinds[snap.edges[edge + edgeTypeAt] ?? 0];
      const to = (snap.edges[edge + edgeToAt] ?? 0) / width;
      const raw = snap.edges[edge + edgeNameAt] ?? 0;
      const label = type === "element" || type === "hidden" ? `[${raw}]` : (snap.strings[raw] ?? "?");
      if (type === "property" && names.length < 5) names.push(label);
      if (type === "weak" || type === "shortcut") continue;
      if ((retainer[to] ?? 0) < 0) {
        retainer[to] = n;
        // A property named by an id (Engine.IO's clients by socket id) reads as one key, not one per socket.
        retainerEdge[to] = type === "element" || type === "hidden" ? "[]" : ID.test(label) ? "<id>" : label;
      }
    }
    if (kind(n) === "object") props[n] = names.join(",");
  }
  const out = new Map<string, { count: number; bytes: number }>();
  for (let n = 0; n < count; n++) {
    const type = kind(n);
    const by = retainer[n] ?? -1;
    const label = (m: number) => (m < 0 ? "(root)" : `${kind(m) === "object" ? name(m) : kind(m)}.${retainerEdge[m]}`);
    // Two levels for what is not an object: whose Map's table, whose array's elements.
    const holder = type === "object" || by < 0 ? label(by) : `${label(by)} ← ${label(retainer[by] ?? -1)}`;
    const what =
      type === "object"
        ? `object ${name(n).slice(0, 40)} {${props[n]}}`
        : `${type} ${type === "closure" || type === "native" ? name(n).slice(0, 40) : ""}`;
    // `--by-kind`: what it is only (steadier: the first retainer of like objects varies between snapshots).
    const key = BY_KIND ? what : BY_HOLDER ? `${what} ← ${label(by)}` : `${what} ← ${holder}`;
    const entry = out.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += snap.nodes[n * width + sizeAt] ?? 0;
    out.set(key, entry);
  }
  return out;
}

async function snapshotOf(instance: Instance, dir: string): Promise<string> {
  const known = new Set(readdirSync(dir));
  process.kill(instance.pid, "SIGUSR1");
  let file: string | undefined;
  await waitFor(
    "heap snapshot",
    () => {
      file = readdirSync(dir).find((f) => !known.has(f) && f.endsWith(".heapsnapshot"));
      return file !== undefined;
    },
    { timeoutMs: 120_000, intervalMs: 200 },
  );
  // Written in one go, but give the writer time to finish: wait until the size stops changing.
  let size = -1;
  await waitFor(
    "heap snapshot written",
    () => {
      const now = readFileSync(join(dir, file ?? "")).length;
      const done = now === size && now > 0;
      size = now;
      return done;
    },
    { timeoutMs: 120_000, intervalMs: 1_000 },
  );
  return join(dir, file ?? "");
}

type Rows = Map<string, { count: number; bytes: number }>;

/** Per added socket, by key: the second snapshot less the first, over the sockets of the second half. */
async function perSocket(kind: ServerKind, sockets: number, tabs: number): Promise<Rows> {
  const dir = mkdtempSync(join(tmpdir(), "tether-heap-"));
  const [redis, workers] = await Promise.all([startBenchRedis(), startWorkers(3)]);
  const bench: Bench = {
    workers,
    redis: { plain: redis, tether: redis },
    cookies: { plain: [], tether: [] },
    quick: false,
    nodeFlags: [],
    progress: (text) => process.stderr.write(`heap-diff: ${text}\n`),
    notes: [],
  };
  const nodeFlags = ["--heapsnapshot-signal=SIGUSR1", `--diagnostic-dir=${dir}`];
  const instance =
    kind === "bare"
      ? await startBare({ name: "bare-1", nodeFlags })
      : await startInstance(kind, redis, { name: `${kind}-1`, nodeFlags });
  try {
    const users = Math.ceil(sockets / tabs);
    const half = Math.floor(users / 2);
    if (kind !== "bare") await ensureLogins(bench, kind, instance.url, users);
    const target = { kind, url: instance.url };
    const pids = [instance.pid];
    await openSockets(bench, target, specsFor(bench, kind, 0, 25, tabs), 10);
    await closeSockets(bench, pids);
    await openSockets(bench, target, specsFor(bench, kind, 0, half, tabs), 32);
    await dropHttp(bench);
    await settle(pids, { windowMs: 300, maxMs: 10_000 });
    const first = await snapshotOf(instance, dir);
    const second = await openSockets(bench, target, specsFor(bench, kind, half, users, tabs), 32);
    await dropHttp(bench);
    await settle(pids, { windowMs: 300, maxMs: 10_000 });
    const last = await snapshotOf(instance, dir);
    const [a, b] = [summarize(first), summarize(last)];
    const n = second.opened;
    const rows: Rows = new Map();
    for (const key of new Set([...a.keys(), ...b.keys()])) {
      const [before, after] = [a.get(key) ?? { count: 0, bytes: 0 }, b.get(key) ?? { count: 0, bytes: 0 }];
      rows.set(key, { count: (after.count - before.count) / n, bytes: (after.bytes - before.bytes) / n });
    }
    process.stderr.write(`heap-diff: ${kind}: ${n} sockets added\n`);
    return rows;
  } finally {
    await instance.stop();
    await Promise.all(workers.map((w) => stop(w.child)));
    await redis.close();
    if (process.argv.includes("--keep")) process.stderr.write(`heap-diff: snapshots kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

/** `a` less `b`, by key (what one system holds per socket that the other does not). */
function minus(a: Rows, b: Rows): Rows {
  const out: Rows = new Map();
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const [x, y] = [a.get(key) ?? { count: 0, bytes: 0 }, b.get(key) ?? { count: 0, bytes: 0 }];
    out.set(key, { count: x.count - y.count, bytes: x.bytes - y.bytes });
  }
  return out;
}

async function main(): Promise<void> {
  const [system = "tether", socketsArg = "4000", tabsArg = "4", topArg = "40"] = process.argv
    .slice(2)
    .filter((a) => !a.startsWith("--"));
  const [sockets, tabs] = [Number(socketsArg), Number(tabsArg)];
  // `tether-bare`: both, one after the other, and the first's rows less the second's.
  const [kind, baseline] = system.split("-") as [ServerKind, ServerKind | undefined];
  const ours = await perSocket(kind, sockets, tabs);
  const rows = [...(baseline ? minus(ours, await perSocket(baseline, sockets, tabs)) : ours)]
    .map(([key, r]) => ({ key, ...r }))
    .sort((x, y) => Math.abs(y.bytes) - Math.abs(x.bytes));
  const total = rows.reduce((sum, r) => sum + r.bytes, 0);
  process.stdout.write(`${system}: per socket ${(total / 1024).toFixed(2)} KiB of heap objects\n`);
  process.stdout.write("  bytes   objects  what\n");
  for (const r of rows.slice(0, Number(topArg))) {
    process.stdout.write(`${r.bytes.toFixed(0).padStart(7)} ${r.count.toFixed(2).padStart(9)}  ${r.key}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`heap-diff: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
