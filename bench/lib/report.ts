/** The results: a table for people (stdout) and JSON for tools (bench/results/latest.json). */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** One measured quantity, for both systems. */
export interface Row {
  metric: string;
  plain: number | undefined;
  tether: number | undefined;
  /** Which way is better; undefined for figures that only explain others. */
  better: "higher" | "lower" | undefined;
}

/** Tether ÷ plain, when both exist. */
export function ratio(row: Row): number | undefined {
  return row.plain === undefined || row.tether === undefined || row.plain === 0 ? undefined : row.tether / row.plain;
}

/** The median of a list of numbers (undefined entries skipped). */
export function median(values: (number | undefined)[]): number | undefined {
  const sorted = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function show(value: number | undefined): string {
  if (value === undefined) return "—";
  if (value >= 100) return Math.round(value).toLocaleString("en-US");
  return value >= 10 ? value.toFixed(1) : value.toFixed(3);
}

/** The table: metric, plain Socket.IO, Tether, ratio (Tether ÷ plain) and which way is better. */
export function formatTable(rows: Row[]): string {
  const header = ["metric", "plain Socket.IO", "Tether", "ratio T/plain", "better"];
  const cells = rows.map((row) => {
    const r = ratio(row);
    return [
      row.metric,
      show(row.plain),
      show(row.tether),
      r === undefined ? "—" : `${r.toFixed(2)}x`,
      row.better ?? "",
    ];
  });
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((line) => line[i]?.length ?? 0)));
  const line = (values: string[]) =>
    values.map((value, i) => (i === 0 ? value.padEnd(widths[i] ?? 0) : value.padStart(widths[i] ?? 0))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...cells.map(line)].join("\n");
}

/** Writes the rows (with ratios) and whatever context is given as pretty JSON. */
export function writeJson(file: string, rows: Row[], context: Record<string, unknown>): void {
  mkdirSync(dirname(file), { recursive: true });
  const results = rows.map((row) => ({ ...row, ratio: ratio(row) }));
  writeFileSync(file, `${JSON.stringify({ ...context, results }, null, 2)}\n`);
}
