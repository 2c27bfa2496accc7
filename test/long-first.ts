import { relative } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The files that take longest, longest first (seconds on a quiet 2-core machine, from
 * `vitest run --reporter=verbose`). Vitest orders a fresh clone's files by size, largest first,
 * and some of these are small: the chaos run (2 KB, about a minute) started last and ran on alone
 * for most of that minute while the other workers sat idle. Longest first, the workers finish
 * together. A file missing from the list (or one that got faster) only runs in vitest's order.
 */
export const LONG_FILES = [
  "client/test/browser/demo-ui.test.ts", // 59
  "client/test/browser/sharing.test.ts", // 58
  "server/test/chaos/chaos.test.ts", // 53
  "client/test/browser/demo-a11y.test.ts", // 52
  "ops/test/rolling-restart.test.ts", // 41
  "server/test/security-http.test.ts", // 38
  "server/test/lifecycle.test.ts", // 37
  "server/test/subscription-probe.test.ts", // 29
  "server/test/job-failover.test.ts", // 28
  "ops/test/cluster.test.ts", // 28
  "server/test/recovery.test.ts", // 28
  "server/test/security/connection-cap.test.ts", // 27
  "server/test/reconnect.test.ts", // 24
  "client/test/browser/network.test.ts", // 23
  "server/test/security/replay-budget.test.ts", // 23
  "client/test/browser/demo.test.ts", // 22
  "server/test/redis-errors.test.ts", // 22
];

/** Vitest's order, with the files of LONG_FILES moved to the front in the list's order. */
export class LongFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (spec: TestSpecification) => {
      const index = LONG_FILES.indexOf(relative(spec.project.config.root, spec.moduleId));
      return index < 0 ? LONG_FILES.length : index;
    };
    // Array.prototype.sort is stable: the rest keep vitest's order.
    return sorted.sort((a, b) => rank(a) - rank(b));
  }
}
