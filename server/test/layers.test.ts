// The layer order of ARCHITECTURE.md, checked on the imports of server/src: a module
// imports from its own folder or from a layer below it, never from one above or
// beside it, so the graph stays acyclic and each layer can be read without the ones above.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = resolve(import.meta.dirname, "../src");

/** From the bottom up; a layer's modules are folders (`name/`) or top-level files (`name.ts`). */
const LAYERS: readonly (readonly string[])[] = [
  ["errors.ts", "env/"],
  ["store/"],
  ["observability/"],
  ["auth/"],
  ["realtime/"],
  ["http/"],
  ["ops/", "demo/"],
  ["config/"],
  ["api.ts"],
  ["tether.ts"],
  ["server.ts", "worker-publisher.ts"],
  ["main.ts", "index.ts"],
];

/** The module a file belongs to: its top folder, or itself at the top level. */
function moduleOf(file: string): string {
  const [first = "", ...rest] = relative(SRC, file).split("/");
  return rest.length > 0 ? `${first}/` : first;
}

function layerOf(module: string): number {
  const layer = LAYERS.findIndex((modules) => modules.includes(module));
  if (layer === -1) throw new Error(`${module} has no layer: add it to ARCHITECTURE.md and to this test`);
  return layer;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith(".ts")
        ? [join(dir, entry.name)]
        : [],
  );
}

/** Every relative import and re-export of a file, `import type` included: types are part of the layering. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specifiers = [...text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+"(\.{1,2}\/[^"]+)"/gms)].map(
    (m) => m[1] ?? "",
  );
  return specifiers.map((specifier) => resolve(dirname(file), specifier).replace(/\.js$/, ".ts"));
}

describe("server/src layers", () => {
  const files = sourceFiles(SRC);

  it("puts every module in a layer", () => {
    for (const file of files) expect(() => layerOf(moduleOf(file)), file).not.toThrow();
  });

  it("imports only from its own module or from a layer below", () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = moduleOf(file);
      for (const target of importsOf(file)) {
        const to = moduleOf(target);
        if (to === from) continue;
        if (layerOf(to) >= layerOf(from)) upward.push(`${relative(SRC, file)} → ${relative(SRC, target)}`);
      }
    }
    expect(upward).toEqual([]);
  });
});
