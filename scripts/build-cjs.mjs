// The CommonJS half of a dual package, run in the package's folder after `tsc -p
// tsconfig.build.json` has written the ES modules and declarations to dist/:
// every source file transpiled on its own to dist/cjs/*.js (esbuild; `import()` of
// ESM-only dependencies stays a real dynamic import), the declarations copied
// beside them, and dist/cjs/package.json saying "commonjs", so Node and TypeScript
// read that folder as CommonJS and the rest of dist/ as ESM.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { build } from "esbuild";

const SRC = "src";
const DIST = "dist";
const CJS = join(DIST, "cjs");

/** @param {string} dir @returns {string[]} files under dir, relative to it */
function walk(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)));
}

rmSync(CJS, { recursive: true, force: true });
const sources = walk(SRC).filter(
  (file) => file.endsWith(".ts") && !file.endsWith(".d.ts") && !file.endsWith(".test.ts"),
);
await build({
  entryPoints: sources.map((file) => join(SRC, file)),
  outdir: CJS,
  outbase: SRC,
  bundle: false,
  format: "cjs",
  platform: "node",
  target: "node20",
  sourcemap: true,
  // The maps point at src/, which is published.
  sourcesContent: false,
  logLevel: "warning",
});

// Declarations: the same text serves both formats; only their maps' relative paths move one level down.
for (const file of walk(DIST)) {
  if (file.startsWith(`cjs/`) || file.includes("tsbuildinfo")) continue;
  const from = join(DIST, file);
  const to = join(CJS, file);
  if (file.endsWith(".d.ts")) {
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(from, to);
  } else if (file.endsWith(".d.ts.map")) {
    const map = JSON.parse(readFileSync(from, "utf8"));
    map.sources = map.sources.map((/** @type {string} */ source) => `../${source}`);
    mkdirSync(dirname(to), { recursive: true });
    writeFileSync(to, JSON.stringify(map));
  }
}
writeFileSync(join(CJS, "package.json"), `${JSON.stringify({ type: "commonjs" }, null, 2)}\n`);
