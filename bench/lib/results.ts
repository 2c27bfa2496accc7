/** Each scenario's results as table rows (medians over rounds, Tether ÷ plain) and as SVG charts. */
import type { FanOutResult } from "./fanout.js";
import type { IdleResult } from "./idle.js";
import type { MemoryResult } from "./memory.js";
import type { RampResult } from "./ramp.js";
import type { InterleavedResult, ReconnectResult } from "./reconnects.js";
import { median, type Row } from "./report.js";
import type { RoundTrips } from "./round-trips.js";
import type { SoakOptions, SoakSample } from "./soak.js";
import type { StormResult, StormVariant } from "./storm.js";
import { cumulative, lineChart } from "./svg.js";

function rowOf<T extends { system: string }>(
  results: T[],
  metric: string,
  pick: (r: T) => number | undefined,
  better: Row["better"],
): Row {
  const of = (system: string) => median(results.filter((r) => r.system === system).map(pick));
  return { metric, plain: of("plain"), tether: of("tether"), better };
}

export function rampRows(results: RampResult[]): Row[] {
  return [
    rowOf(results, "connects/s (second half)", (r) => r.connectsPerSecond, "higher"),
    rowOf(results, "server CPU ms per connect", (r) => r.serverCpuMsPerConnect, "lower"),
    rowOf(results, "  Redis CPU ms per connect", (r) => r.redisCpuMsPerConnect, undefined),
    rowOf(
      results,
      "  server+Redis CPU ms per connect",
      (r) => r.serverCpuMsPerConnect + r.redisCpuMsPerConnect,
      "lower",
    ),
    rowOf(results, "connect latency p50 ms (token+handshake+welcome)", (r) => r.latencyP50Ms, "lower"),
    rowOf(results, "connect latency p99 ms", (r) => r.latencyP99Ms, "lower"),
    rowOf(results, "heap KiB per connection (at full)", (r) => r.heapKiBPerConnection, "lower"),
    rowOf(results, "RSS KiB per connection (at full)", (r) => r.rssKiBPerConnection, "lower"),
    rowOf(results, "  server RSS MiB at full", (r) => r.rssMiBAtFull, undefined),
    rowOf(results, "Redis commands per connect (under load)", (r) => r.redisCommandsPerConnect, "lower"),
    rowOf(results, "failed connects", (r) => r.failed, "lower"),
  ];
}

const show = (value: number | undefined) => (value === undefined ? "—" : String(value));

export function roundTripTable(trips: RoundTrips[]): string {
  const lines = [
    "Redis per connect, one connect at a time (median of the connects): reads = round trips",
    "label                            token reads  token cmds  handshake reads  handshake cmds  handshake commands",
  ];
  for (const t of trips) {
    const commands = Object.entries(t.handshakeByCommand)
      .map(([name, n]) => `${name}×${n}`)
      .join(" ");
    lines.push(
      `${t.label.padEnd(32)} ${show(t.tokenReads).padStart(11)} ${show(t.tokenCommands).padStart(11)} ${show(t.handshakeReads).padStart(16)} ${show(t.handshakeCommands).padStart(15)}  ${commands}`,
    );
  }
  return lines.join("\n");
}

function stormOf(results: StormResult[], variant: StormVariant, pick: (r: StormResult) => number | undefined) {
  return median(results.filter((r) => r.variant === variant).map(pick));
}

/** Storm rows: plain against Tether with tokens, and against Tether with the ticket. */
export function stormRows(results: StormResult[]): Row[] {
  const rows: Row[] = [];
  const figures: [string, (r: StormResult) => number | undefined, Row["better"]][] = [
    ["victims", (r) => r.victims, undefined],
    ["p50 ms kill → welcome", (r) => r.p50Ms, "lower"],
    ["p99 ms kill → welcome", (r) => r.p99Ms, "lower"],
    ["max ms kill → welcome", (r) => r.maxMs, "lower"],
    ["failures (not back in 60 s)", (r) => r.failed, "lower"],
    ["HTTP token requests", (r) => r.tokenRequests, "lower"],
    ["ticket handshakes", (r) => r.ticketHandshakes, undefined],
    ["cookie handshakes", (r) => r.cookieHandshakes, undefined],
    ["tickets refused", (r) => r.ticketsRefused, "lower"],
    ["refused by admission: rate", (r) => r.admissionRefusals.rate ?? 0, "lower"],
    ["refused by admission: loop delay", (r) => r.admissionRefusals.delay ?? 0, "lower"],
  ];
  for (const variant of ["tether", "tether+ticket"] as const) {
    if (!results.some((r) => r.variant === variant)) continue;
    for (const [metric, pick, better] of figures) {
      rows.push({
        metric: `${variant === "tether" ? "token" : "ticket"}: ${metric}`,
        plain: stormOf(results, "plain", pick),
        tether: stormOf(results, variant, pick),
        better,
      });
    }
  }
  return rows;
}

const COLORS: Record<StormVariant, string> = { plain: "#888888", tether: "#d9480f", "tether+ticket": "#1971c2" };
const NAMES: Record<StormVariant, string> = {
  plain: "plain Socket.IO + redis-adapter",
  tether: "Tether, token per reconnect",
  "tether+ticket": "Tether, resume ticket",
};

/** Share of victims reconnected over time after the kill: the first round of each variant. */
export function stormChart(results: StormResult[]): string {
  const firsts = (["plain", "tether", "tether+ticket"] as const).flatMap((variant) => {
    const r = results.find((result) => result.variant === variant);
    return r ? [r] : [];
  });
  const xMax = Math.max(1, ...firsts.map((r) => (r.maxMs ?? 0) / 1000)) * 1.05;
  return lineChart({
    title: `Reconnect storm: victims of kill -9 back (${firsts[0]?.victims ?? 0} victims)`,
    xLabel: "seconds since kill -9",
    yLabel: "% of victims welcomed again",
    xMax,
    yMax: 100,
    series: firsts.map((r) => ({
      name: NAMES[r.variant],
      color: COLORS[r.variant],
      points: cumulative(r.reconnectedMs, r.victims),
    })),
  });
}

export function fanOutTable(results: FanOutResult[]): string {
  const lines = [
    "system  instances  published  delivered  received÷delivered  pub/sub msgs received per instance (each)   tether_fanout_messages_total (each)  server CPU µs/delivered  above idle  Redis CPU µs/delivered",
  ];
  for (const r of results) {
    const counter = r.fanoutCounterPerInstance.every((c) => c === undefined)
      ? "n/a"
      : r.fanoutCounterPerInstance.map((c) => show(c)).join(" / ");
    // Pub/sub messages the instances received, per event they delivered: 1 when each hears only its own users.
    const amplification = r.pubsubPerInstance.reduce((a, b) => a + b, 0) / Math.max(1, r.delivered);
    lines.push(
      `${r.system.padEnd(7)} ${String(r.instances).padStart(9)} ${String(r.published).padStart(10)} ${String(r.delivered).padStart(10)}  ${amplification.toFixed(2).padStart(18)}  ${r.pubsubPerInstance.join(" / ").padEnd(43)} ${counter.padEnd(36)} ${r.serverCpuUsPerDelivered.toFixed(0).padStart(23)} ${r.serverCpuAboveIdleUsPerDelivered.toFixed(0).padStart(11)} ${r.redisCpuUsPerDelivered.toFixed(0).padStart(23)}`,
    );
  }
  return lines.join("\n");
}

export function idleTable(results: IdleResult[]): string {
  const lines = ["system  sockets  Redis commands/s  server CPU %  Redis CPU %  commands/s by name"];
  for (const r of results) {
    const by = Object.entries(r.byCommandPerSecond)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([name, n]) => `${name} ${n.toFixed(1)}`)
      .join(", ");
    lines.push(
      `${r.system.padEnd(7)} ${String(r.sockets).padStart(7)} ${r.redisCommandsPerSecond.toFixed(1).padStart(17)} ${r.serverCpuPercent.toFixed(2).padStart(12)} ${r.redisCpuPercent.toFixed(2).padStart(12)}  ${by}`,
    );
  }
  return lines.join("\n");
}

export function soakChart(samples: SoakSample[], options: SoakOptions): string {
  const minutes = (s: SoakSample) => s.seconds / 60;
  const yMax = Math.max(1, ...samples.map((s) => s.rssMiB)) * 1.2;
  return lineChart({
    title: `Tether churn soak: ${options.pool} sockets, ${options.churn} leave and join per second`,
    xLabel: "minutes",
    yLabel: "MiB after a full GC",
    xMax: Math.max(1, ...samples.map(minutes)),
    yMax,
    series: [
      { name: "RSS", color: "#1971c2", points: samples.map((s) => [minutes(s), s.rssMiB]) },
      { name: "heap used + external", color: "#d9480f", points: samples.map((s) => [minutes(s), s.heapMiB]) },
    ],
  });
}

/** Memory per idle socket: bare Socket.IO, plain, Tether (medians over rounds), Tether as a ratio of each. */
export function memoryTable(results: MemoryResult[]): string {
  const of = (system: string, pick: (r: MemoryResult) => number) =>
    median(results.filter((r) => r.system === system).map(pick));
  const fmt = (value: number | undefined) => (value === undefined ? "—" : value.toFixed(2));
  const times = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || b === 0 ? "—" : `${(a / b).toFixed(2)}x`;
  const lines = ["per idle socket     bare Socket.IO   plain   Tether   T/bare   T/plain"];
  for (const [metric, pick] of [
    ["heap KiB (used+ext)", (r: MemoryResult) => r.heapKiB],
    ["RSS KiB (0 → all)", (r: MemoryResult) => r.rssKiB],
    ["  heap committed KiB", (r: MemoryResult) => r.heapTotalKiB],
    ["RSS MiB at full", (r: MemoryResult) => r.rssMiBAtFull],
  ] as const) {
    const [bare, plain, tether] = [of("bare", pick), of("plain", pick), of("tether", pick)];
    lines.push(
      `${metric.padEnd(19)} ${fmt(bare).padStart(14)} ${fmt(plain).padStart(7)} ${fmt(tether).padStart(8)} ${times(tether, bare).padStart(8)} ${times(tether, plain).padStart(9)}`,
    );
  }
  return lines.join("\n");
}

/** Server CPU per first connect and per reconnect (medians over rounds), each Tether variant ÷ plain. */
export function reconnectTable(results: ReconnectResult[]): string {
  const of = (variant: string, pick: (r: ReconnectResult) => number) =>
    median(results.filter((r) => r.variant === variant).map(pick));
  const plain = { connect: of("plain", (r) => r.connectCpuMs), reconnect: of("plain", (r) => r.reconnectCpuMs) };
  const x = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || b === 0 ? "—" : `${(a / b).toFixed(2)}x`;
  const f = (v: number | undefined) => (v === undefined ? "—" : v.toFixed(3));
  const lines = [
    "variant          connect CPU ms  ÷ plain   writes/connect   reconnect CPU ms  ÷ plain   writes/reconnect   reconnects failed",
  ];
  for (const variant of ["plain", "tether+ticket", "tether+token"]) {
    if (!results.some((r) => r.variant === variant)) continue;
    const connect = of(variant, (r) => r.connectCpuMs);
    const reconnect = of(variant, (r) => r.reconnectCpuMs);
    const writes = of(variant, (r) => r.reconnectWrites);
    const firstWrites = of(variant, (r) => r.connectWrites);
    const w = (v: number | undefined) => (v === undefined ? "—" : v.toFixed(2));
    const failed = of(variant, (r) => r.reconnectFailed);
    lines.push(
      `${variant.padEnd(16)} ${f(connect).padStart(14)}  ${x(connect, plain.connect).padStart(7)}   ${w(firstWrites).padStart(14)}   ${f(reconnect).padStart(16)}  ${x(reconnect, plain.reconnect).padStart(7)}   ${w(writes).padStart(16)}   ${String(failed ?? "—").padStart(17)}`,
    );
  }
  return lines.join("\n");
}

export function interleavedTable(result: InterleavedResult): string {
  const ratios = [...result.turnRatios].sort((a, b) => a - b);
  const ratio = result.cpuMs.tether / result.cpuMs.plain;
  const spread = `${ratios[0]?.toFixed(2)}–${median(ratios)?.toFixed(2)}–${ratios.at(-1)?.toFixed(2)}`;
  const above = result.cpuAboveIdleMs;
  const idle = result.idleMsPerSecond;
  return [
    "plain CPU ms / reconnect   tether+ticket   ÷ plain   per turn (min–median–max)   failed",
    `${result.cpuMs.plain.toFixed(3).padStart(24)}   ${result.cpuMs.tether.toFixed(3).padStart(13)}   ${`${ratio.toFixed(2)}x`.padStart(7)}   ${spread.padStart(25)}   ${String(result.failed).padStart(6)}`,
    "",
    "above idle: plain ms / reconnect   tether+ticket   ÷ plain   idle CPU ms/s plain   tether",
    `${above.plain.toFixed(3).padStart(32)}   ${above.tether.toFixed(3).padStart(13)}   ${`${(above.tether / above.plain).toFixed(2)}x`.padStart(7)}   ${idle.plain.toFixed(1).padStart(19)}   ${idle.tether.toFixed(1).padStart(6)}`,
  ].join("\n");
}
