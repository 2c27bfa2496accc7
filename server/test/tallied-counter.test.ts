import { Counter, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { TalliedCounter } from "../src/observability/tallied-counter.js";

/** The same increments on a tallied counter and on prom-client's own read the same when scraped. */
describe("a tallied counter", () => {
  const pair = (labelNames: string[]) => {
    const [tallied, plain] = [new Registry(), new Registry()];
    const config = { name: "t_total", help: "t", labelNames };
    return {
      tallied: new TalliedCounter({ ...config, registers: [tallied] }),
      plain: new Counter({ ...config, registers: [plain] }),
      read: async () => [await tallied.metrics(), await plain.metrics()],
    };
  };

  it("one label, zeros kept, added values: the same exposition as prom-client's counter", async () => {
    const { tallied, plain, read } = pair(["result"]);
    for (const counter of [tallied, plain]) {
      counter.inc({ result: "never" }, 0);
      counter.inc({ result: "ok" });
      counter.inc({ result: "ok" }, 2.5);
      counter.inc({ result: "TOKEN_INVALID" });
    }
    const [mine, theirs] = await read();
    expect(mine).toBe(theirs);
    expect(mine).toContain('t_total{result="ok"} 3.5');
    expect(mine).toContain('t_total{result="never"} 0');
    // Read again after more: the tallies are totals, not deltas.
    tallied.inc({ result: "ok" });
    expect((await read())[0]).toContain('t_total{result="ok"} 4.5');
  });

  it("no labels and two labels (in any order in the call)", async () => {
    const none = pair([]);
    none.tallied.inc();
    none.tallied.inc(2);
    none.plain.inc(3);
    const [a, b] = await none.read();
    expect(a).toBe(b);
    const two = pair(["recovered", "reason"]);
    for (const counter of [two.tallied, two.plain]) {
      counter.inc({ recovered: "true", reason: "none" });
      counter.inc({ reason: "none", recovered: "true" });
      counter.inc({ recovered: "false", reason: "trimmed" });
    }
    const [c, d] = await two.read();
    expect(c).toBe(d);
    expect(c).toContain('t_total{recovered="true",reason="none"} 2');
  });

  it("refuses what a counter cannot add", () => {
    const { tallied } = pair(["result"]);
    expect(() => tallied.inc({ result: "ok" }, -1)).toThrow(TypeError);
    expect(() => tallied.inc({ result: "ok" }, Number.NaN)).toThrow(TypeError);
    expect(() => tallied.inc(Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });
});
