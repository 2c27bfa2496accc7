import { resolve } from "node:path";
import { build } from "esbuild";
import { describe, expect, expectTypeOf, it } from "vitest";
import * as browserEntry from "../src/index.browser.js";
import * as nodeEntry from "../src/index.js";

const CLIENT_DIR = resolve(import.meta.dirname, "..");

/** The two entry points the export conditions choose between (`browser`/`default` and `node`). */
describe("@tether/client entry points", () => {
  it("export the same API, with the same types", () => {
    expect(Object.keys(browserEntry).sort()).toEqual(Object.keys(nodeEntry).sort());
    expectTypeOf<typeof browserEntry>().toEqualTypeOf<typeof nodeEntry>();
  });

  it("the browser entry never reaches the Node cookie jar; the Node entry does", async () => {
    const inputsOf = async (entry: string) => {
      const result = await build({
        entryPoints: [resolve(CLIENT_DIR, entry)],
        bundle: true,
        write: false,
        metafile: true,
        platform: "browser",
        format: "esm",
        conditions: ["source"],
        logLevel: "silent",
      });
      return Object.keys(result.metafile.inputs);
    };
    const cookieJar = (inputs: string[]) =>
      inputs.filter((input) => /fetch-cookie|tough-cookie|cookie-jar/.test(input));
    expect(cookieJar(await inputsOf("src/index.browser.ts"))).toEqual([]);
    expect(cookieJar(await inputsOf("src/index.ts"))).not.toEqual([]);
  });
});
