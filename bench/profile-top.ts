/**
 * Summarizes a V8 CPU profile (from `npm run bench -- --cpu-prof`): the
 * functions and the packages with the most self time.
 *
 * @example
 * node --import tsx bench/profile-top.ts bench/results/profiles/CPU.….cpuprofile [count]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, countArg] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write("usage: profile-top.ts <file.cpuprofile> [count]\n");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));

/** Where a frame's code lives: a package, the repo's own source, Node itself, or V8. */
function origin(url: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] ?? url;
  const own = /\/(server|shared|client|bench)\/src\/|\/bench\//.exec(url);
  if (own) return `(tether ${own[1] ?? "bench"})`;
  return url.startsWith("node:") ? "(node core)" : url === "" ? "(v8/native)" : url;
}

const selfByFunction = new Map<string, number>();
const selfByOrigin = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const node = byId.get(id);
  const micros = profile.timeDeltas[i] ?? 0;
  if (!node || node.callFrame.functionName === "(idle)") return;
  const { functionName, url, lineNumber } = node.callFrame;
  const name = `${functionName || "(anonymous)"}  ${origin(url)}:${lineNumber + 1}`;
  selfByFunction.set(name, (selfByFunction.get(name) ?? 0) + micros);
  selfByOrigin.set(origin(url), (selfByOrigin.get(origin(url)) ?? 0) + micros);
  total += micros;
});

const top = (map: Map<string, number>, count: number) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, micros]) => `${((100 * micros) / total).toFixed(1).padStart(5)}%  ${name}`)
    .join("\n");
const count = Number(countArg ?? 25);
process.stdout.write(`busy ${(total / 1000).toFixed(0)} ms (idle excluded)\n\nby package:\n${top(selfByOrigin, 15)}\n`);
process.stdout.write(`\nby function (self time):\n${top(selfByFunction, count)}\n`);
