// Browser bundles of the SDK's browser entry (src/index.browser.ts: no Node cookie jar):
// - demo/tether.js: ESM, minified, for the demo page the server serves;
// - dist/tether.min.js: the script-tag build, an IIFE that defines `window.Tether`
//   (`Tether.createTetherClient(…)`), with a source map carrying its sources.
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
]);
