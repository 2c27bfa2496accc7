/**
 * Reconnect storm: `clients` sockets (users × tabs) through HAProxy on two
 * instances; one instance is killed with SIGKILL and every client that was on
 * it (a victim) reconnects by itself. Per victim: the time from the kill to its
 * next `welcome`. Variants: plain Socket.IO, Tether with a fresh token per
 * reconnect, Tether with the resume ticket (skipped, with a note, when the
 * instances offer no ticket).
 */
import {
  type Bench,
  closeSockets,
  counters,
  ensureLogins,
  inOrder,
  openSockets,
  quantile,
  specsFor,
} from "./context.js";
import { type Instance, type SystemName, startHaproxy, startInstance } from "./instances.js";

export type StormVariant = "plain" | "tether" | "tether+ticket";
export const STORM_VARIANTS: StormVariant[] = ["plain", "tether", "tether+ticket"];

export interface StormOptions {
  clients: number;
  tabs: number;
  concurrency: number;
  rounds: number;
  timeoutMs: number;
}

export interface StormResult {
  variant: StormVariant;
  victims: number;
  /** ms from the kill to `welcome`, per reconnected victim, sorted. */
  reconnectedMs: number[];
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
  failed: number;
  tokenRequests: number;
  ticketHandshakes: number;
  cookieHandshakes: number;
  ticketsRefused: number;
  /** Handshakes the survivor's admission control turned away during the storm (the `UNAVAILABLE`s), by reason. */
  admissionRefusals: Record<string, number>;
  errors: Record<string, number>;
}

const systemOf = (variant: StormVariant): SystemName => (variant === "plain" ? "plain" : "tether");

async function stormOnce(bench: Bench, variant: StormVariant, options: StormOptions): Promise<StormResult | undefined> {
  const system = systemOf(variant);
  const redis = bench.redis[system];
  const instances: Instance[] = [];
  for (const name of ["a", "b"]) {
    instances.push(await startInstance(system, redis, { name: `${system}-${name}`, nodeFlags: bench.nodeFlags }));
  }
  const [victim, survivor] = instances as [Instance, Instance];
  const balancer = await startHaproxy(instances);
  const pids = [survivor.pid, redis.pid() ?? 0];
  try {
    const users = Math.ceil(options.clients / options.tabs);
    await ensureLogins(bench, system, survivor.url, users);
    // The ticket variant is the SDK in a browser: a first connect by session cookie, reconnects by ticket.
    const mode = { reconnect: true, tickets: variant === "tether+ticket", cookie: variant === "tether+ticket" };
    await openSockets(
      bench,
      { kind: system, url: balancer.url },
      specsFor(bench, system, 0, users, options.tabs),
      options.concurrency,
      mode,
    );
    const before = await counters(bench);
    if (mode.tickets && before.ticketsOffered === 0) {
      bench.notes.push("storm: the instances offer no resume ticket (welcome has no `ticket`): tether+ticket skipped.");
      return undefined;
    }
    const marked = await Promise.all(bench.workers.map((w) => w.request("markVictims", { victim: victim.name })));
    const victims = marked.reduce((sum, m) => sum + m.victims, 0);
    bench.progress(`storm ${variant}: ${victims} of ${options.clients} clients on ${victim.name}; kill -9`);
    const refusalsBefore = await admissionRefusals(survivor);
    const killedAt = Date.now();
    await victim.kill9();
    const waits = await Promise.all(
      bench.workers.map((w) => w.request("awaitVictims", { killedAt, timeoutMs: options.timeoutMs })),
    );
    const after = await counters(bench);
    const refused = await admissionRefusals(survivor);
    for (const [reason, n] of Object.entries(refusalsBefore)) refused[reason] = (refused[reason] ?? 0) - n;
    const reconnectedMs = waits.flatMap((w) => w.reconnectedMs).sort((a, b) => a - b);
    await closeSockets(bench, pids);
    return {
      variant,
      victims,
      reconnectedMs,
      p50Ms: quantile(reconnectedMs, 0.5),
      p99Ms: quantile(reconnectedMs, 0.99),
      maxMs: reconnectedMs.at(-1),
      failed: waits.reduce((sum, w) => sum + w.failed, 0),
      tokenRequests: after.tokenRequests,
      ticketHandshakes: after.ticketHandshakes,
      cookieHandshakes: after.cookieHandshakes,
      ticketsRefused: after.ticketsRefused,
      admissionRefusals: refused,
      errors: after.errors,
    };
  } finally {
    await Promise.all(bench.workers.map((w) => w.request("close", {})));
    await balancer.stop();
    await Promise.all(instances.map((instance) => instance.stop()));
  }
}

/** `tether_admission_refusals_total` by reason (`rate`, `delay`, `full`). */
async function admissionRefusals(instance: Instance): Promise<Record<string, number>> {
  const byReason: Record<string, number> = {};
  for (const [labels, n] of Object.entries(await instance.samples("tether_admission_refusals_total"))) {
    byReason[/reason="([^"]*)"/.exec(labels)?.[1] ?? "all"] = n;
  }
  return byReason;
}

export async function runStorm(bench: Bench, options: StormOptions): Promise<StormResult[]> {
  const results: StormResult[] = [];
  let variants = [...STORM_VARIANTS];
  for (let round = 0; round < options.rounds; round++) {
    for (const variant of inOrder(variants, round)) {
      bench.progress(`storm ${round + 1}/${options.rounds}, ${variant}: ${options.clients} clients`);
      const result = await stormOnce(bench, variant, options);
      if (result) results.push(result);
      else variants = variants.filter((v) => v !== variant);
    }
  }
  return results;
}
