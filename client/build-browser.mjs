// Bundles the SDK for the demo page: demo/tether.js (ESM, browser, minified).
import { build } from "esbuild";

await build({
  entryPoints: ["src/index.ts"],
  outfile: "demo/tether.js",
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  sourcemap: false,
  // Resolve workspace packages to their TypeScript sources.
  conditions: ["source"],
  // Node-only cookie jar: imported dynamically and never executed in a browser.
  external: ["fetch-cookie", "tough-cookie"],
  logLevel: "info",
});
