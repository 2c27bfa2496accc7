#!/usr/bin/env node
// `npm run docs:check` (part of `npm test`): the committed API reference (docs/api, Markdown)
// is what TypeDoc makes of the source now. Generates it into a temporary folder with the
// repository's typedoc.json and compares file by file; on any difference it names the files
// and exits 1: run `npm run docs` and commit docs/api.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const COMMITTED = join(ROOT, "docs/api");

/** Every file under `dir`, as paths relative to it. */
function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

const fresh = mkdtempSync(join(tmpdir(), "tether-api-docs-"));
try {
  execFileSync(join(ROOT, "node_modules/.bin/typedoc"), ["--out", fresh, "--logLevel", "Warn"], {
    cwd: ROOT,
    stdio: "inherit",
  });
  const made = files(fresh);
  const kept = files(COMMITTED);
  const stale = [
    ...made.filter((file) => !kept.includes(file)).map((file) => `missing: docs/api/${file}`),
    ...kept.filter((file) => !made.includes(file)).map((file) => `no longer generated: docs/api/${file}`),
    ...made
      .filter((file) => kept.includes(file))
      .filter((file) => !readFileSync(join(fresh, file)).equals(readFileSync(join(COMMITTED, file))))
      .map((file) => `changed: docs/api/${file}`),
  ];
  if (stale.length > 0) {
    console.error(`The API reference in docs/api is stale (${stale.length} files):`);
    for (const line of stale.slice(0, 20)) console.error(`  ${line}`);
    if (stale.length > 20) console.error(`  … and ${stale.length - 20} more`);
    console.error("Run `npm run docs` and commit docs/api.");
    process.exit(1);
  }
  console.log(`docs/api is current (${made.length} files).`);
} finally {
  rmSync(fresh, { recursive: true, force: true });
}
