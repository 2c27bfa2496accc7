import { defineConfig } from "vitest/config";
import { LongFirst } from "./test/long-first.js";

export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: ["*/test/**/*.test.ts"],
    globalSetup: ["./test/global-setup.ts"],
    pool: "forks",
    // Deadlines for a loaded machine (CI runs beside other work): a test that starts server
    // processes and runs a scenario of seconds takes several times that when the cores are busy.
    // The tests wait for conditions, so a passing run takes no longer for these.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Files start their own redis-server and server processes on free ports; two cores here, and
    // the run is CPU-bound already (more workers only slow each other's timers).
    maxWorkers: 3,
    sequence: { sequencer: LongFirst },
    reporters: ["default"],
  },
});
