#!/usr/bin/env node
// `npm run compare:tasks` (part of `npm test`): the README's five everyday tasks against the
// same tasks written for Socket.IO, Centrifugo and Ably in docs/guides/compared.md. Every
// snippet is formatted by Biome (the repository's settings: 120 columns) and its lines are
// counted without blank lines and comments, so a long line counts as the lines it formats to.
// Checks that compared.md quotes the README's Tether snippets word for word, writes the
// counts table into compared.md (between its counts markers; `--write`), and fails when a
// Tether snippet is longer than the shortest peer's for the same task.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const README = join(ROOT, "README.md");
const COMPARED = join(ROOT, "docs/guides/compared.md");
const BIOME = join(ROOT, "node_modules/.bin/biome");
const PEERS = ["tether", "socket.io", "centrifugo", "ably"];
const TASKS = [1, 2, 3, 4, 5];

/** The fenced code blocks of a Markdown text. */
const blocksOf = (text) => [...text.matchAll(/```(?:ts|js)\n([\s\S]*?)```/g)].map((m) => m[1]);

/** The README's task snippets: task number → its code blocks, from "Five everyday tasks" to the next heading. */
function readmeTasks() {
  const text = readFileSync(README, "utf8");
  const start = text.indexOf("### Five everyday tasks");
  const section = text.slice(start, text.indexOf("\n### ", start + 1));
  const tasks = new Map();
  for (const part of section.split(/\n\*\*(?=\d\. )/).slice(1)) tasks.set(Number(part[0]), blocksOf(part));
  return tasks;
}

/** compared.md's snippets: `task:N peer:P` markers, each followed by code blocks up to the next marker or heading. */
function comparedTasks(text) {
  const found = new Map();
  for (const m of text.matchAll(/<!-- task:(\d) peer:([\w.]+) -->\n([\s\S]*?)(?=\n<!-- task:|\n## |$)/g))
    found.set(`${m[1]} ${m[2]}`, blocksOf(m[3]));
  return found;
}

/** Lines of code once formatted: no blank lines, no comment-only lines, trailing comments kept on their line. */
function lines(blocks) {
  let count = 0;
  for (const code of blocks) {
    const formatted = execFileSync(BIOME, ["format", "--stdin-file-path=snippet.ts"], { input: code, cwd: ROOT })
      .toString()
      .split("\n")
      .filter((line) => line.trim() !== "" && !line.trim().startsWith("//"));
    count += formatted.length;
  }
  return count;
}

const text = readFileSync(COMPARED, "utf8");
const readme = readmeTasks();
const compared = comparedTasks(text);
const problems = [];
const rows = [];
for (const task of TASKS) {
  const ours = compared.get(`${task} tether`);
  if (JSON.stringify(ours) !== JSON.stringify(readme.get(task)))
    problems.push(`task ${task}: compared.md's Tether snippet is not the README's`);
  const counts = PEERS.map((peer) => {
    const blocks = compared.get(`${task} ${peer}`);
    if (!blocks || blocks.length === 0) problems.push(`task ${task}: no ${peer} snippet`);
    return lines(blocks ?? []);
  });
  const shortestPeer = Math.min(...counts.slice(1));
  if (counts[0] > shortestPeer)
    problems.push(`task ${task}: Tether ${counts[0]} lines, the shortest peer ${shortestPeer}`);
  rows.push(
    `| ${task} | ${counts.map((n, i) => (i > 0 && n === shortestPeer ? `**${n}**` : String(n))).join(" | ")} |`,
  );
}
const table = [
  "| task | Tether | Socket.IO | Centrifugo | Ably |",
  "|---|---|---|---|---|",
  ...rows,
  "",
  "(lines of code once formatted; **bold**: the shortest peer)",
].join("\n");
const updated = text.replace(
  /<!-- counts:start -->[\s\S]*<!-- counts:end -->/,
  `<!-- counts:start -->\n${table}\n<!-- counts:end -->`,
);
if (process.argv.includes("--write")) writeFileSync(COMPARED, updated);
else if (updated !== text) problems.push("compared.md's counts table is stale: run `npm run compare:tasks -- --write`");
console.log(table);
if (problems.length > 0) {
  for (const problem of problems) console.error(problem);
  process.exit(1);
}
