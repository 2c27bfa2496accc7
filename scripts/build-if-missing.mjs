// Builds the workspaces when an output is missing, and only then: several
// instances can start side by side without rebuilding under each other.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
/** What `npm start` runs and serves: the three packages and the demo page's bundle. */
const BUILD_OUTPUTS = ["shared/dist/index.js", "server/dist/main.js", "client/dist/index.js", "client/demo/tether.js"];

/** @param {string} who  the prefix of the one line printed when a build runs */
export function buildIfMissing(who) {
  if (BUILD_OUTPUTS.every((file) => existsSync(join(ROOT, file)))) return;
  process.stderr.write(`${who}: building (first start)…\n`);
  const turbo = join(ROOT, "node_modules/turbo/bin/turbo");
  execFileSync(process.execPath, [turbo, "run", "build", "--output-logs=errors-only"], { cwd: ROOT, stdio: "inherit" });
}
