import { describe, expect, it } from "vitest";
import { type ClientEvent, type ClientRecord, check, type PublishRecord, targetMet } from "./checker.js";

const U = "user:alice";
const R = "room:lobby";

/** Acked publishes of `stream`, seq 1..n, one every 10 ms from t=100. */
function acked(stream: string, n: number, from = 100): PublishRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    stream,
    seq: i + 1,
    callId: `${stream}/${i + 1}`,
    startedAt: from + i * 10,
    endedAt: from + i * 10 + 5,
    attempts: 1,
    acked: true,
    failed: false,
    offset: `opaque-${i + 1}`,
  }));
}

function client(events: ClientEvent[], extra: Partial<ClientRecord> = {}): ClientRecord {
  return { id: "c1", streams: [U, R], sessionValid: true, events, connectedAtEnd: true, ...extra };
}

const welcome = (t: number): ClientEvent => ({ t, kind: "welcome", instance: "a", streams: [U, R] });
type Delivery = Extract<ClientEvent, { kind: "event" }>;
const ev = (t: number, seq: number, stream = U): Delivery => ({ t, kind: "event", stream, seq, offset: `o${seq}` });
/** An event that carries its call id, as the chaos publisher's data does. */
const evc = (t: number, seq: number, stream = U): Delivery => ({ ...ev(t, seq, stream), cid: `${stream}/${seq}` });
const kinds = (h: Parameters<typeof check>[0], options?: Parameters<typeof check>[1]) =>
  check(h, options).violations.map((v) => [v.kind, v.seq]);

describe("the chaos checker", () => {
  it("passes a clean history", () => {
    const verdict = check({
      publishes: acked(U, 3),
      clients: [client([welcome(50), ev(101, 1), ev(111, 2), ev(121, 3)])],
    });
    expect(verdict.violations).toEqual([]);
    expect(verdict).toMatchObject({ deliveries: 3, obligations: 3, covered: 0 });
  });

  it("fails on a duplicate", () => {
    expect(
      kinds({ publishes: acked(U, 2), clients: [client([welcome(50), ev(101, 1), ev(111, 2), ev(112, 2)])] }),
    ).toEqual([["duplicate", 2]]);
  });

  it("fails on a reorder", () => {
    expect(
      kinds({ publishes: acked(U, 3), clients: [client([welcome(50), ev(101, 1), ev(121, 3), ev(122, 2)])] }),
    ).toEqual([["reorder", 2]]);
  });

  it("fails on a loss", () => {
    expect(kinds({ publishes: acked(U, 3), clients: [client([welcome(50), ev(101, 1), ev(121, 3)])] })).toEqual([
      ["loss", 2],
    ]);
  });

  it("accepts a loss covered by a later recovered:false for that stream", () => {
    const verdict = check({
      publishes: acked(U, 3),
      clients: [
        client([welcome(50), ev(101, 1), { t: 130, kind: "recovery", stream: U, recovered: false, missed: 2 }]),
      ],
    });
    expect(verdict.violations).toEqual([]);
    expect(verdict.covered).toBe(2);
  });

  it("does not let a recovered:false of another stream, or an earlier one, cover a loss", () => {
    const otherStream: ClientEvent = { t: 130, kind: "recovery", stream: R, recovered: false, missed: 1 };
    const earlier: ClientEvent = { t: 90, kind: "recovery", stream: U, recovered: false, missed: 1 };
    expect(
      kinds({ publishes: acked(U, 2), clients: [client([welcome(50), earlier, ev(101, 1), otherStream])] }),
    ).toEqual([["loss", 2]]);
  });

  it("owes nothing published before the client started on the stream", () => {
    expect(kinds({ publishes: acked(U, 3), clients: [client([welcome(115), ev(121, 3)])] })).toEqual([]);
  });

  it("owes nothing for a failed publish, but counts it for order and duplicates when it arrives", () => {
    const publishes = acked(R, 3);
    publishes[1] = { ...publishes[1]!, acked: false, failed: true, offset: undefined, error: "timeout" };
    expect(kinds({ publishes, clients: [client([welcome(50), ev(101, 1, R), ev(121, 3, R)])] })).toEqual([]);
    expect(kinds({ publishes, clients: [client([welcome(50), ev(101, 1, R), ev(121, 3, R), ev(130, 2, R)])] })).toEqual(
      [["reorder", 2]],
    );
    expect(
      kinds({
        publishes,
        clients: [client([welcome(50), ev(101, 1, R), ev(111, 2, R), ev(112, 2, R), ev(121, 3, R)])],
      }),
    ).toEqual([["duplicate", 2]]);
  });

  it("fails on an event of a stream the client is not entitled to", () => {
    expect(kinds({ publishes: [], clients: [client([welcome(50), ev(60, 1, "user:bob")])] })).toEqual([
      ["foreign-event", 1],
    ]);
  });

  it("fails when a valid session is sent to the login screen, and stops owing events after that", () => {
    const refused: ClientEvent = { t: 105, kind: "connect_error", code: "SESSION_EXPIRED", retryable: false };
    expect(kinds({ publishes: acked(U, 3), clients: [client([welcome(50), ev(101, 1), refused])] })).toEqual([
      ["unauthenticated-with-valid-session", undefined],
    ]);
    const ended: ClientEvent = { t: 60, kind: "session_ended", reason: "revoked" };
    expect(kinds({ publishes: [], clients: [client([welcome(50), ended])] })[0]?.[0]).toBe(
      "unauthenticated-with-valid-session",
    );
    const tokenRefused: ClientEvent = { t: 60, kind: "token_refused", status: 401, code: "SESSION_REQUIRED" };
    expect(kinds({ publishes: [], clients: [client([welcome(50), tokenRefused])] })[0]?.[0]).toBe(
      "unauthenticated-with-valid-session",
    );
    // A retryable refusal is a reconnect, not a logout.
    const retry: ClientEvent = { t: 60, kind: "connect_error", code: "UNAVAILABLE", retryable: true };
    expect(kinds({ publishes: [], clients: [client([welcome(50), retry])] })).toEqual([]);
  });

  it("accepts the end of a session that really ended", () => {
    const ended: ClientEvent = { t: 60, kind: "session_ended", reason: "logout" };
    expect(kinds({ publishes: [], clients: [client([welcome(50), ended], { sessionValid: false })] })).toEqual([]);
  });

  it("fails a client that never settled", () => {
    expect(kinds({ publishes: [], clients: [client([welcome(50)], { connectedAtEnd: false })] })).toEqual([
      ["not-connected-at-end", undefined],
    ]);
  });

  it("fails on a call delivered twice, by its call id, and counts it", () => {
    const verdict = check({
      publishes: acked(U, 2),
      clients: [client([welcome(50), evc(101, 1), evc(111, 2), { ...evc(140, 2), offset: "o2-again" }])],
    });
    expect(verdict.violations.map((v) => [v.kind, v.seq])).toEqual([["duplicate", 2]]);
    expect(verdict.violations[0]?.detail).toContain(`call ${U}/2`);
    expect(verdict.duplicates).toBe(1);
  });

  it("fails on two stream entries for one call (a retried write that had landed)", () => {
    const publishes = acked(R, 2);
    publishes[1] = { ...publishes[1]!, attempts: 2 };
    const verdict = check({
      publishes,
      clients: [client([welcome(50), evc(101, 1, R), evc(111, 2, R)])],
      entries: [
        { stream: R, id: "1-0", callId: `${R}/1` },
        { stream: R, id: "2-0", callId: `${R}/2` },
        { stream: R, id: "3-0", callId: `${R}/2` },
      ],
    });
    expect(verdict.violations.map((v) => [v.kind, v.seq])).toEqual([["duplicate-entry", 2]]);
    expect(verdict.violations[0]?.detail).toContain("2-0, 3-0");
    expect(verdict.duplicates).toBe(1);
  });

  it("counts a call rejected after its deadline as failed, owes nothing for it, and misses the target", () => {
    const publishes = acked(U, 3);
    publishes[2] = { ...publishes[2]!, acked: false, failed: true, attempts: 7, offset: undefined, error: "503" };
    const verdict = check({ publishes, clients: [client([welcome(50), evc(101, 1), evc(111, 2)])] });
    expect(verdict.violations).toEqual([]);
    expect(verdict).toMatchObject({ calls: 3, acked: 2, failed: 1, obligations: 2, duplicates: 0 });
    expect(targetMet(verdict).met).toBe(false);
    expect(targetMet(verdict, { minAcked: 0.5, maxDuplicates: 0 }).met).toBe(true);
    expect(targetMet(check({ publishes: acked(U, 3), clients: [] })).met).toBe(true);
  });

  it("misses the target on any duplicate, even with every call acknowledged", () => {
    const verdict = check({
      publishes: acked(U, 1),
      clients: [client([welcome(50), evc(101, 1), evc(102, 1)])],
    });
    expect(verdict.acked).toBe(verdict.calls);
    expect(targetMet(verdict).met).toBe(false);
  });

  it("judges a quiet stream's last event before the next publish: late when only that publish revealed it", () => {
    // #2 acked at 115, then 10 s of silence; #3 starts at 10_200.
    const publishes = acked(U, 3);
    publishes[2] = { ...publishes[2]!, startedAt: 10_200, endedAt: 10_205 };
    const inTime = [welcome(50), evc(101, 1), evc(5_000, 2), evc(10_210, 3)];
    expect(kinds({ publishes, clients: [client(inTime)] }, { quietMs: 10_000 })).toEqual([]);
    const revealed = [welcome(50), evc(101, 1), evc(10_210, 3), evc(10_230, 2)];
    expect(kinds({ publishes, clients: [client(revealed)] }, { quietMs: 10_000 })).toEqual([
      ["reorder", 2],
      ["late", 2],
    ]);
    const afterNext = [welcome(50), evc(101, 1), evc(10_201, 2), evc(10_210, 3)];
    expect(kinds({ publishes, clients: [client(afterNext)] }, { quietMs: 10_000 })).toEqual([["late", 2]]);
    // A recovered:false within the gap covers it; a gap shorter than quietMs judges nothing.
    const refetched = [
      welcome(50),
      evc(101, 1),
      { t: 6_000, kind: "recovery", stream: U, recovered: false, missed: 1 } as ClientEvent,
      evc(10_201, 2),
      evc(10_210, 3),
    ];
    expect(kinds({ publishes, clients: [client(refetched)] }, { quietMs: 10_000 })).toEqual([]);
    expect(kinds({ publishes, clients: [client(afterNext)] }, { quietMs: 20_000 })).toEqual([]);
    expect(check({ publishes, clients: [] }, { quietMs: 10_000 }).quietGaps).toBe(1);
  });

  it("fails on an instance that crashed", () => {
    const crashes = [{ t: 70, instance: "chaos-a", detail: "MaxRetriesPerRequestError: …" }];
    expect(kinds({ publishes: [], clients: [], crashes })).toEqual([["instance-crash", undefined]]);
  });
});
