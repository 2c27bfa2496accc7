#!/usr/bin/env node
// `npm run check:packages` (part of `npm test`, after the build): the packages as a
// consumer gets them. Packs shared, client, react and server with `npm pack`, then checks
// - each tarball: README, LICENSE, every source map's sources inside the tarball,
//   publint (strict) and @arethetypeswrong/cli (the server is ESM-only by choice);
// - a consumer project that installs the tarballs (offline, from npm's cache):
//   `tsc` under moduleResolution node16 (ESM and CJS files), bundler and node10;
//   `import` and `require` at run time (the Node entry, with its cookie jar);
//   the script-tag build in a bare VM context;
// - the browser bundle a consumer's esbuild makes of `@tether/client`: minified,
//   at most BUNDLE_LIMIT_BYTES, and without the Node cookie jar.
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { runInNewContext } from "node:vm";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "node_modules/.bin");
/**
 * The limit of the client's browser bundle, minified, not gzipped. 60 KB until the
 * SDK shared one connection among tabs: a leader tab runs the hub that serves the
 * others, so that code is in every tab's bundle (about 12 KB; socket.io-client alone is 42 KB).
 * 76 KB until subscriptions, history, presence data, the logger and the worker's token
 * requests to tabs (about 4 KB together).
 */
const BUNDLE_LIMIT_BYTES = 80 * 1024;
const PACKAGES = ["shared", "client", "react", "server"];
/** Packages whose runtime the consumer must never bundle for a browser. */
const NODE_ONLY = ["fetch-cookie", "tough-cookie"];

/** The one page that states the client's bundle sizes: written by this check, linked from the docs. */
const SIZES_PAGE = join(ROOT, "docs/bundle-size.md");

/**
 * Writes the sizes measured by this run to {@link SIZES_PAGE}, so the docs never state a
 * figure of their own.
 * @param {Record<string, Uint8Array | undefined>} sizes
 */
function writeBundleSizes(sizes) {
  const kb = (/** @type {number} */ n) => `${(n / 1024).toFixed(1)} KB`;
  const rows = Object.entries(sizes).map(([what, bytes]) => {
    const raw = bytes?.byteLength ?? 0;
    const gzipped = bytes ? gzipSync(bytes, { level: 9 }).byteLength : 0;
    return `| ${what} | ${kb(raw)} | ${kb(gzipped)} |`;
  });
  const page = `# Client bundle size

Written by \`npm run check:packages\` (scripts/check-packages.mjs) from the packed
\`@tether/client\`, each time it runs: the one place the docs take this figure from.
The check fails above ${kb(BUNDLE_LIMIT_BYTES)} minified.

| build | minified | gzipped |
|---|---|---|
${rows.join("\n")}
`;
  writeFileSync(SIZES_PAGE, page);
}

/** @type {string[]} */
const failures = [];
let lastCheck = performance.now();
/** @param {string} what @param {boolean} ok @param {string} [detail] */
function check(what, ok, detail = "") {
  const ms = Math.round(performance.now() - lastCheck);
  lastCheck = performance.now();
  process.stdout.write(`${ok ? "ok  " : "FAIL"} ${what}${detail ? `: ${detail}` : ""} (${ms} ms)\n`);
  if (!ok) failures.push(what);
}
/** @param {string} file @param {string[]} args @param {string} cwd */
function run(file, args, cwd) {
  try {
    return { ok: true, out: execFileSync(file, args, { cwd, encoding: "utf8", stdio: "pipe" }) };
  } catch (error) {
    const e = /** @type {{ stdout?: string; stderr?: string; message: string }} */ (error);
    return { ok: false, out: `${e.stdout ?? ""}${e.stderr ?? ""}` || e.message };
  }
}

/**
 * `run` without blocking, for checks that may overlap.
 * @param {string} file @param {string[]} args @param {string} cwd
 * @returns {Promise<{ ok: boolean; out: string }>}
 */
function runAsync(file, args, cwd) {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, encoding: "utf8" }, (error, stdout, stderr) => {
      resolve({ ok: error === null, out: `${stdout}${stderr}` || (error?.message ?? "") });
    });
  });
}

for (const name of PACKAGES) {
  const dist = join(ROOT, name, "dist");
  try {
    statSync(join(dist, "index.js"));
  } catch {
    throw new Error(`${name}/dist is missing: run \`npm run build\` first`);
  }
}

const work = mkdtempSync(join(tmpdir(), "tether-packages-"));
try {
  // ---- the tarballs
  /** @type {Record<string, string>} */
  const tarballs = {};
  for (const name of PACKAGES) {
    const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", work], join(ROOT, name)).out);
    const { filename, files } = packed[0];
    tarballs[name] = join(work, filename);
    /** @type {Set<string>} */
    const paths = new Set(files.map((/** @type {{ path: string }} */ file) => file.path));
    check(`${name}: README.md and LICENSE packed`, paths.has("README.md") && paths.has("LICENSE"));
    /** @type {string[]} */
    const unresolved = [];
    for (const path of paths) {
      if (!path.endsWith(".map")) continue;
      const map = JSON.parse(readFileSync(join(ROOT, name, path), "utf8"));
      map.sources.forEach((/** @type {string} */ source, /** @type {number} */ i) => {
        const inside = posix.normalize(posix.join(posix.dirname(path), map.sourceRoot ?? "", source));
        if (!paths.has(inside) && typeof map.sourcesContent?.[i] !== "string") unresolved.push(`${path} → ${source}`);
      });
    }
    check(
      `${name}: every source map resolves inside the tarball`,
      unresolved.length === 0,
      unresolved.slice(0, 3).join(", "),
    );
  }
  // publint and attw on every tarball, side by side with the consumer's install below.
  const lints = Promise.all(
    PACKAGES.flatMap((name) => {
      const profile =
        name === "server"
          ? ["--profile", "esm-only"]
          : // The SharedWorker script is an asset loaded by URL (`sharedWorkerUrl`), never imported.
            name === "client"
            ? ["--exclude-entrypoints", "./worker"]
            : [];
      return [
        runAsync(join(BIN, "publint"), ["run", tarballs[name] ?? "", "--strict"], work).then(({ ok, out }) => ({
          what: `${name}: publint --strict`,
          ok: ok && /All good/.test(out),
          out,
        })),
        runAsync(join(BIN, "attw"), [tarballs[name] ?? "", "--format", "ascii", ...profile], work).then(
          ({ ok, out }) => ({ what: `${name}: attw ${profile.join(" ") || "(all resolutions)"}`, ok, out }),
        ),
      ];
    }),
  );

  // ---- a consumer project
  const consumer = join(work, "consumer");
  mkdirSync(consumer);
  const file = (/** @type {string} */ name, /** @type {string} */ text) => writeFileSync(join(consumer, name), text);
  const versionOf = (/** @type {string} */ dep) =>
    JSON.parse(readFileSync(join(ROOT, "node_modules", dep, "package.json"), "utf8")).version;
  const local = Object.fromEntries(PACKAGES.map((name) => [`@tether/${name}`, `file:${tarballs[name]}`]));
  file(
    "package.json",
    JSON.stringify({
      name: "consumer",
      private: true,
      type: "module",
      dependencies: local,
      // @tether/react's peer: the React the workspace tests with.
      devDependencies: {
        "@types/node": versionOf("@types/node"),
        "@types/react": versionOf("@types/react"),
        react: versionOf("react"),
      },
      // The server depends on @tether/client and @tether/shared 0.1.0: these tarballs, not the registry.
      overrides: local,
    }),
  );
  const install = await runAsync(
    "npm",
    ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
    consumer,
  );
  for (const { what, ok, out } of await lints) check(what, ok, ok ? "" : out);
  check("consumer: npm install of the tarballs", install.ok, install.ok ? "" : install.out);
  if (!install.ok) throw new Error("cannot go on without the install");

  // Type checks under every resolution mode a consumer may use.
  const esmSource = `import { createTetherClient, ErrorCode, type TetherClient } from "@tether/client";
import { Route, type WelcomePayload } from "@tether/shared";
import { createTether, loadConfig, type Tether } from "@tether/server";
import { createTetherHooks, type TetherHooks, useConnectionState } from "@tether/react";
export const client: TetherClient = createTetherClient({ url: "http://127.0.0.1:1" });
export const hooks: TetherHooks<{ server: { "a:b": { n: number } } }> = createTetherHooks();
export const state: () => string = useConnectionState;
export const route: string = Route.Login;
export const code: string = ErrorCode.SessionExpired;
export type Welcome = WelcomePayload;
export const make: (c: ReturnType<typeof loadConfig>) => Promise<Tether> = (config) => createTether({ config });
`;
  const cjsSource = `import { createTetherClient, type TetherClient } from "@tether/client";
import { createTetherHooks } from "@tether/react";
import { Route } from "@tether/shared";
export const hooks = createTetherHooks<{ server: { "a:b": { n: number } } }>();
export const client: TetherClient = createTetherClient({ url: "http://127.0.0.1:1" });
export const route: string = Route.Login;
`;
  file("esm.mts", esmSource);
  file("cjs.cts", cjsSource);
  file("bundler.ts", esmSource);
  file("node10.ts", cjsSource);
  const base = {
    strict: true,
    noEmit: true,
    esModuleInterop: true,
    skipLibCheck: false,
    types: ["node"],
    lib: ["ES2023", "DOM"],
  };
  const modes = {
    node16: { module: "node16", moduleResolution: "node16", files: ["esm.mts", "cjs.cts"] },
    bundler: { module: "esnext", moduleResolution: "bundler", files: ["bundler.ts"] },
    node10: { module: "commonjs", moduleResolution: "node10", files: ["node10.ts"] },
  };
  // skipLibCheck off: our declarations are library files to the consumer. The three run side by side.
  const checked = await Promise.all(
    Object.entries(modes).map(([mode, { files, ...options }]) => {
      file(`tsconfig.${mode}.json`, JSON.stringify({ compilerOptions: { ...base, ...options }, files }));
      const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
      return runAsync(process.execPath, [tsc, "-p", `tsconfig.${mode}.json`], consumer).then((result) => ({
        mode,
        ...result,
      }));
    }),
  );
  for (const { mode, ok, out } of checked) check(`consumer: tsc, moduleResolution ${mode}`, ok, out.trim());

  // Run time: both formats resolve the Node entry, whose cookie jar (ESM-only deps) loads from CJS too.
  const runtime = (/** @type {string} */ loader) => `${loader}
const client = createTetherClient({ url: "http://127.0.0.1:9" });
const refused = await client.session().then(() => "answered", (error) => error.code);
if (refused !== "NETWORK_ERROR" && refused !== "UNAVAILABLE") throw new Error("unexpected: " + refused);
if (typeof createTetherHooks().useSubscription !== "function") throw new Error("@tether/react: no hooks");
console.log(resolved, reactResolved, typeof Route.Login);
`;
  file(
    "run.mjs",
    runtime(`import { createTetherClient } from "@tether/client";
import { Route } from "@tether/shared";
import { createTetherHooks } from "@tether/react";
import "@tether/server";
const resolved = import.meta.resolve("@tether/client");
const reactResolved = import.meta.resolve("@tether/react");`),
  );
  file(
    "run.cjs",
    `(async () => {${runtime(`const { createTetherClient } = require("@tether/client");
const { Route } = require("@tether/shared");
const { createTetherHooks } = require("@tether/react");
const resolved = require.resolve("@tether/client");
const reactResolved = require.resolve("@tether/react");`)}})().catch((e) => { console.error(e); process.exit(1); });`,
  );
  const esm = run(process.execPath, ["run.mjs"], consumer);
  check(
    "consumer: import (ESM) runs the Node entry, and @tether/react's ESM build",
    esm.ok && /client\/dist\/index\.js \S*react\/dist\/index\.js /.test(esm.out),
    esm.out.trim(),
  );
  const cjs = run(process.execPath, ["run.cjs"], consumer);
  check(
    "consumer: require (CJS) runs the Node entry, and @tether/react's CJS build",
    cjs.ok && /client\/dist\/cjs\/index\.js \S*react\/dist\/cjs\/index\.js /.test(cjs.out),
    cjs.out.trim(),
  );

  // The script-tag build defines window.Tether without any module system.
  const iife = readFileSync(join(consumer, "node_modules/@tether/client/dist/tether.min.js"), "utf8");
  /** @type {Record<string, unknown> & { Tether?: { createTetherClient?: unknown } }} */
  const sandbox = {};
  runInNewContext(iife, sandbox);
  check(
    "script tag: dist/tether.min.js defines Tether.createTetherClient",
    typeof sandbox.Tether?.createTetherClient === "function",
  );
  const iifeBytes = Buffer.byteLength(iife);
  check(`script tag: ${iifeBytes} bytes ≤ ${BUNDLE_LIMIT_BYTES}`, iifeBytes <= BUNDLE_LIMIT_BYTES);

  // The browser bundle a consumer's esbuild makes.
  file("browser.js", `import { createTetherClient } from "@tether/client";\ncreateTetherClient().connect();\n`);
  const bundle = await build({
    entryPoints: [join(consumer, "browser.js")],
    absWorkingDir: consumer,
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const bytes = bundle.outputFiles[0]?.contents.byteLength ?? Number.POSITIVE_INFINITY;
  const nodeOnly = Object.keys(bundle.metafile.inputs).filter((input) =>
    NODE_ONLY.some((dep) => input.includes(`/${dep}/`)),
  );
  check(`browser bundle (esbuild, minified): ${bytes} bytes ≤ ${BUNDLE_LIMIT_BYTES}`, bytes <= BUNDLE_LIMIT_BYTES);
  check("browser bundle: no Node cookie jar", nodeOnly.length === 0, nodeOnly.join(", "));
  const worker = readFileSync(join(consumer, "node_modules/@tether/client/dist/tether-worker.js"));
  writeBundleSizes({
    "`@tether/client` through a bundler (esbuild, minified ESM, socket.io-client included)":
      bundle.outputFiles[0]?.contents,
    "`dist/tether.min.js`, the script-tag build": Buffer.from(iife),
    "`dist/tether-worker.js`, the SharedWorker": worker,
  });
} finally {
  rmSync(work, { recursive: true, force: true });
}

if (failures.length > 0) {
  process.stderr.write(`\ncheck-packages: ${failures.length} failed: ${failures.join("; ")}\n`);
  process.exit(1);
}
process.stdout.write("\ncheck-packages: all good\n");
