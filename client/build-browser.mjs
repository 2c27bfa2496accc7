// Browser bundles of the SDK's browser entry (src/index.browser.ts: no Node cookie jar):
// - demo/tether.js: ESM, minified, for the demo page the server serves;
// - dist/tether.min.js: the script-tag build, an IIFE that defines `window.Tether`
//   (`Tether.createTetherClient(…)`), with a source map carrying its sources;
// - dist/tether-worker.js: the SharedWorker that owns the connection of every tab of
//   an origin (src/index.worker.ts; `sharedWorkerUrl`), served by the Tether server at
//   `<basePath>/tether-worker.js`.
import { build } from "esbuild";

/** @type {import("esbuild").BuildOptions} */
const common = {
  entryPoints: ["src/index.browser.ts"],
  bundle: true,
  platform: "browser",
  target: "es2022",
  minify: true,
  // Resolve workspace packages to their TypeScript sources.
  conditions: ["source"],
  logLevel: "warning",
};

await Promise.all([
  build({ ...common, outfile: "demo/tether.js", format: "esm", sourcemap: false }),
  build({ ...common, outfile: "dist/tether.min.js", format: "iife", globalName: "Tether", sourcemap: true }),
  build({ ...common, entryPoints: ["src/index.worker.ts"], outfile: "dist/tether-worker.js", format: "iife" }),
]);
