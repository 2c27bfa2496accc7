#!/usr/bin/env node
// `npm start`: build only what is missing (so several instances can start side
// by side without rebuilding under each other), then run one instance in this
// process, so SIGTERM reaches it directly.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outputs = ["shared/dist/index.js", "server/dist/main.js", "client/dist/index.js", "client/demo/tether.js"];

if (outputs.some((file) => !existsSync(join(root, file)))) {
  process.stderr.write("tether: building (first start)…\n");
  execFileSync(
    process.execPath,
    [join(root, "node_modules/turbo/bin/turbo"), "run", "build", "--output-logs=errors-only"],
    {
      cwd: root,
      stdio: "inherit",
    },
  );
}
await import(pathToFileURL(join(root, "server/dist/main.js")).href);
