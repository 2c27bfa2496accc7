import { ErrorCode } from "@tether/shared";
import { describe, expect, it } from "vitest";
import { TetherError } from "../src/errors.js";
import { Metrics } from "../src/observability/metrics.js";
import { Admission, BURST_SECONDS } from "../src/realtime/admission.js";

const RATE = 10;

/** An instance's admission control with a clock the test moves. */
function admissionAt(rate = RATE) {
  const clock = { ms: 0 };
  const metrics = new Metrics(() => 0);
  const admission = new Admission(
    { handshakesPerSecond: rate, maxEventLoopDelayMs: 0 },
    metrics,
    () => 0.5,
    () => clock.ms,
  );
  /** Handshakes tried now, one after another: how many were let in before the first refusal. */
  const admitted = (tries: number) => {
    let n = 0;
    for (let i = 0; i < tries; i++) {
      try {
        admission.admit();
        n += 1;
      } catch (err) {
        expect(err).toBeInstanceOf(TetherError);
        expect((err as TetherError).code).toBe(ErrorCode.Unavailable);
        expect((err as TetherError).retryAfterMs).toBeGreaterThan(0);
      }
    }
    return n;
  };
  return { clock, admitted, metrics };
}

/**
 * The handshake rate is sustained, not per window: a quiet instance takes a burst of
 * BURST_SECONDS of it at full speed (a killed instance's victims arrive within a second or
 * two), and refuses past it; then it takes the rate and no more.
 */
describe("admission control's handshake rate", () => {
  it("a quiet instance takes exactly its burst at once, and refuses the next", () => {
    const { admitted } = admissionAt();
    expect(admitted(RATE * BURST_SECONDS)).toBe(RATE * BURST_SECONDS);
    expect(admitted(1)).toBe(0);
  });

  it("after the burst, the rate: one second lets in the rate's worth, however many try", () => {
    const { clock, admitted } = admissionAt();
    expect(admitted(10 * RATE)).toBe(RATE * BURST_SECONDS);
    for (let second = 1; second <= 5; second++) {
      clock.ms = second * 1_000;
      expect(admitted(10 * RATE)).toBe(RATE);
    }
  });

  it("a pause refills the burst, never past its depth", () => {
    const { clock, admitted } = admissionAt();
    expect(admitted(RATE * BURST_SECONDS)).toBe(RATE * BURST_SECONDS);
    clock.ms = 60_000;
    expect(admitted(10 * RATE)).toBe(RATE * BURST_SECONDS);
  });

  it("refusals are counted by reason", async () => {
    const { admitted, metrics } = admissionAt();
    admitted(RATE * BURST_SECONDS + 3);
    const text = await metrics.registry.getSingleMetricAsString("tether_admission_refusals_total");
    expect(text).toContain('tether_admission_refusals_total{reason="rate"} 3');
  });
});
