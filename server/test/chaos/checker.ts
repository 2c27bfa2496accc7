/**
 * The model the chaos suite judges a recorded run against: a pure function over
 * the history (no clocks, no I/O), so every rule can be driven by a handcrafted
 * history in a unit test. Offsets are opaque: publish order comes from the
 * publisher's own sequence numbers, carried in every event's data.
 */

/**
 * One publish call, as the publisher saw it: every attempt of it carries the
 * same call id (the idempotency key). Per stream, calls are sequential: seq
 * order is publish order. Every call is an obligation: acknowledged, or
 * rejected after its deadline (`failed`), which counts against the target.
 */
export interface PublishRecord {
  stream: string;
  seq: number;
  /** Unique per call; sent as the idempotency key and in the event's data (`cid`). */
  callId: string;
  /** When the first attempt was sent (ms, the recorder's clock). */
  startedAt: number;
  /** When the last answer (or the last failure) came back. */
  endedAt: number;
  /** Attempts made (retries of the same call, same id). */
  attempts: number;
  /** True when the server acknowledged it (202 with an offset). */
  acked: boolean;
  /** True when it was still not acknowledged at its deadline: given up and reported. */
  failed: boolean;
  offset?: string;
  /** Why the last failed attempt failed (also on a call acked on a retry), for the report. */
  error?: string;
}

/** One entry of a stream as Redis held it at the end of the run: two for one call id is a duplicate write. */
export interface StreamEntryRecord {
  stream: string;
  id: string;
  callId: string;
}

/** What one client saw, at the raw Socket.IO level, in arrival order. */
export type ClientEvent =
  | { t: number; kind: "connect" }
  | { t: number; kind: "disconnect"; reason: string }
  /** `streams` are the streams this connection starts on (the user stream and its rooms' streams). */
  | { t: number; kind: "welcome"; instance: string; streams: string[] }
  | { t: number; kind: "event"; stream: string; seq: number; offset: string; cid?: string }
  /** `stream` is the user stream, or the room's stream when the recovery carries `room`. */
  | { t: number; kind: "recovery"; stream: string; recovered: boolean; missed: number }
  | { t: number; kind: "connect_error"; code: string; retryable: boolean | undefined }
  | { t: number; kind: "session_ended"; reason: string }
  /** The token endpoint said the session is gone (401). */
  | { t: number; kind: "token_refused"; status: number; code: string };

export interface ClientRecord {
  id: string;
  /** The streams this client is entitled to (its user stream and its rooms). */
  streams: string[];
  /** True while the run considers the client's session valid (no logout in these runs). */
  sessionValid: boolean;
  events: ClientEvent[];
  /** Whether it was connected when the run ended (after the quiet period). */
  connectedAtEnd: boolean;
}

export interface History {
  publishes: PublishRecord[];
  clients: ClientRecord[];
  /** The streams' entries read from Redis at the end (absent: not read). */
  entries?: StreamEntryRecord[];
  /** Instances that exited on their own (a fault is healed by restarting them, never by crashing them). */
  crashes?: { t: number; instance: string; detail: string }[];
}

export interface CheckOptions {
  /**
   * How long a stream must stay silent for its last events to be judged before
   * the next publish (ms): longer than the time it takes to detect a dead
   * subscription. In such a gap every acked call before it must have arrived
   * (or been covered) by the time the next call starts; Infinity: no such rule.
   */
  quietMs?: number;
}

export type ViolationKind =
  | "loss"
  | "duplicate"
  | "duplicate-entry"
  | "late"
  | "reorder"
  | "foreign-event"
  | "unauthenticated-with-valid-session"
  | "not-connected-at-end"
  | "instance-crash";

export interface Violation {
  kind: ViolationKind;
  client: string;
  stream?: string;
  seq?: number;
  /** When it happened, or (for a loss) when the lost publish was sent. */
  t: number;
  detail: string;
}

export interface Verdict {
  violations: Violation[];
  /** Deliveries checked (events received by clients). */
  deliveries: number;
  /** (client, acked publish) pairs that had to be delivered or covered. */
  obligations: number;
  /** Of those, the ones covered by a recovered:false instead of a delivery. */
  covered: number;
  /** `recovery {recovered:false}` events the clients got. */
  notRecovered: number;
  /** Publish calls, acknowledged ones, and ones rejected after their deadline (or never answered). */
  calls: number;
  acked: number;
  failed: number;
  /** Duplicates: a call delivered twice to one client, plus extra stream entries of one call. */
  duplicates: number;
  /** Quiet gaps (≥ quietMs) in which the streams' last events were judged. */
  quietGaps: number;
}

/**
 * Checks the guarantee for every client: every acknowledged publish to one of
 * its streams, sent after the client first started on that stream, is delivered
 * exactly once and in order, or a later `recovery {recovered:false}` for that
 * stream covers it; after a quiet gap, by the time the next call starts; no
 * call arrives twice (by call id) or out of publish order (failed calls that
 * arrive count too); no call is two stream entries; nobody is told their valid
 * session ended; no instance crashes. Calls rejected after their deadline are
 * counted, not owed.
 */
export function check(history: History, options: CheckOptions = {}): Verdict {
  const violations: Violation[] = [];
  const quietMs = options.quietMs ?? Number.POSITIVE_INFINITY;
  let deliveries = 0;
  let obligations = 0;
  let covered = 0;
  let notRecoveredCount = 0;
  let duplicates = 0;
  const byStream = new Map<string, PublishRecord[]>();
  for (const p of history.publishes) {
    const list = byStream.get(p.stream) ?? [];
    list.push(p);
    byStream.set(p.stream, list);
  }
  for (const list of byStream.values()) list.sort((a, b) => a.seq - b.seq);
  /** Per stream, the quiet gaps: the last call before each (by index) and when the next one started. */
  const gaps = new Map<string, { lastIndex: number; until: number }[]>();
  let quietGaps = 0;
  for (const [stream, list] of byStream) {
    const found: { lastIndex: number; until: number }[] = [];
    for (let i = 0; i + 1 < list.length; i++) {
      const [a, b] = [list[i], list[i + 1]];
      if (a && b && b.startedAt - a.endedAt >= quietMs) found.push({ lastIndex: i, until: b.startedAt });
    }
    quietGaps += found.length;
    gaps.set(stream, found);
  }

  for (const crash of history.crashes ?? [])
    violations.push({ kind: "instance-crash", client: crash.instance, t: crash.t, detail: crash.detail || "exited" });

  // Two entries of one call in a stream: a retried write that had landed (not idempotent).
  const entriesOf = new Map<string, StreamEntryRecord[]>();
  for (const entry of history.entries ?? []) {
    const key = `${entry.stream}\u0000${entry.callId}`;
    entriesOf.set(key, [...(entriesOf.get(key) ?? []), entry]);
  }
  const callOf = new Map(history.publishes.map((p) => [`${p.stream}\u0000${p.callId}`, p]));
  for (const [key, list] of entriesOf) {
    if (list.length < 2) continue;
    const [first, ...rest] = list;
    const call = callOf.get(key);
    duplicates += rest.length;
    violations.push({
      kind: "duplicate-entry",
      client: "(stream)",
      stream: first?.stream,
      seq: call?.seq,
      t: call?.startedAt ?? 0,
      detail: `call ${first?.callId} is ${list.length} entries (${list.map((e) => e.id).join(", ")})${call ? `, ${call.attempts} attempts` : ""}`,
    });
  }

  for (const client of history.clients) {
    const entitled = new Set(client.streams);
    /** Per stream: the time this client first started on it (its first welcome naming it). */
    const startedAt = new Map<string, number>();
    /** stream → call (its id, or #seq for events without one) → first receipt */
    const received = new Map<string, Map<string, { t: number; offset: string }>>();
    const lastSeq = new Map<string, number>();
    const notRecovered = new Map<string, number[]>(); // stream → times of recovered:false
    let stoppedAt: number | undefined;
    /** The client was sent to the login screen: a violation while its session is valid; it stops there. */
    const sentToLogin = (t: number, detail: string) => {
      if (!client.sessionValid) return;
      stoppedAt ??= t;
      violations.push({ kind: "unauthenticated-with-valid-session", client: client.id, t, detail });
    };

    for (const e of client.events) {
      switch (e.kind) {
        case "welcome":
          for (const s of e.streams) if (!startedAt.has(s)) startedAt.set(s, e.t);
          break;
        case "event": {
          deliveries++;
          if (!entitled.has(e.stream)) {
            violations.push({
              kind: "foreign-event",
              client: client.id,
              stream: e.stream,
              seq: e.seq,
              t: e.t,
              detail: `got #${e.seq} of ${e.stream}, a stream it is not entitled to`,
            });
            break;
          }
          const seen = received.get(e.stream) ?? new Map<string, { t: number; offset: string }>();
          received.set(e.stream, seen);
          const key = e.cid ?? `#${e.seq}`;
          const first = seen.get(key);
          if (first) {
            duplicates++;
            violations.push({
              kind: "duplicate",
              client: client.id,
              stream: e.stream,
              seq: e.seq,
              t: e.t,
              detail: `#${e.seq}${e.cid ? ` (call ${e.cid})` : ""} again (offset ${e.offset}); first at ${Math.round(first.t)} (offset ${first.offset})`,
            });
            break;
          }
          seen.set(key, { t: e.t, offset: e.offset });
          const last = lastSeq.get(e.stream);
          if (last !== undefined && e.seq < last) {
            violations.push({
              kind: "reorder",
              client: client.id,
              stream: e.stream,
              seq: e.seq,
              t: e.t,
              detail: `#${e.seq} (offset ${e.offset}) after #${last}`,
            });
          } else lastSeq.set(e.stream, e.seq);
          break;
        }
        case "recovery":
          if (!e.recovered) notRecoveredCount++;
          if (!e.recovered) notRecovered.set(e.stream, [...(notRecovered.get(e.stream) ?? []), e.t]);
          break;
        case "connect_error":
          if (e.retryable === false) sentToLogin(e.t, `connect_error ${e.code} (retryable: false)`);
          break;
        case "session_ended":
          sentToLogin(e.t, `session:ended ${e.reason}`);
          break;
        case "token_refused":
          sentToLogin(e.t, `ws-token ${e.status} ${e.code}`);
          break;
        default:
          break;
      }
    }

    for (const stream of client.streams) {
      const start = startedAt.get(stream);
      if (start === undefined) continue;
      const seen = received.get(stream);
      const falses = notRecovered.get(stream) ?? [];
      const calls = byStream.get(stream) ?? [];
      const receiptOf = (p: PublishRecord) => seen?.get(p.callId) ?? seen?.get(`#${p.seq}`);
      const owed = (p: PublishRecord) =>
        // Only acked publishes sent after the client stood on the stream, and before it was
        // (wrongly) stopped: that stop is already a violation of its own.
        p.acked && p.startedAt > start && (stoppedAt === undefined || p.endedAt < stoppedAt);
      // A quiet gap: what was acked before it must be there (or covered) when the next call starts,
      // not rescued by the gap the next event reveals.
      let from = 0;
      for (const gap of gaps.get(stream) ?? []) {
        for (let i = from; i <= gap.lastIndex; i++) {
          const p = calls[i];
          if (!p || !owed(p)) continue;
          const receipt = receiptOf(p);
          if (!receipt || receipt.t <= gap.until) continue; // never arrived: a loss, judged below
          if (falses.some((t) => t >= p.startedAt && t <= gap.until)) continue;
          violations.push({
            kind: "late",
            client: client.id,
            stream,
            seq: p.seq,
            t: p.startedAt,
            detail: `acked #${p.seq} (acked at ${Math.round(p.endedAt)}) arrived at ${Math.round(receipt.t)}, after a quiet gap that ended at ${Math.round(gap.until)}: only the next publish revealed it`,
          });
        }
        from = gap.lastIndex + 1;
      }
      for (const p of calls) {
        if (!owed(p)) continue;
        obligations++;
        if (receiptOf(p)) continue;
        if (falses.some((t) => t >= p.startedAt)) {
          covered++;
          continue;
        }
        violations.push({
          kind: "loss",
          client: client.id,
          stream,
          seq: p.seq,
          t: p.startedAt,
          detail: `acked #${p.seq} (offset ${p.offset}, acked at ${Math.round(p.endedAt)}) never arrived and no later recovered:false covers it`,
        });
      }
    }

    if (!client.connectedAtEnd && stoppedAt === undefined) {
      violations.push({
        kind: "not-connected-at-end",
        client: client.id,
        t: client.events.at(-1)?.t ?? 0,
        // Its last few events say why (a refusal, a close, or attempts that never came back).
        detail: `still not connected after the quiet period; last events: ${client.events
          .slice(-4)
          .map((e) => JSON.stringify(e))
          .join(", ")}`,
      });
    }
  }
  const acked = history.publishes.filter((p) => p.acked).length;
  return {
    violations,
    deliveries,
    obligations,
    covered,
    notRecovered: notRecoveredCount,
    calls: history.publishes.length,
    acked,
    failed: history.publishes.length - acked,
    duplicates,
    quietGaps,
  };
}

/** The target under the standard fault mix: nearly every call acknowledged, none duplicated. */
export interface Target {
  /** Minimum share of publish calls acknowledged (0.999: 99.9 %). */
  minAcked: number;
  maxDuplicates: number;
}
export const STANDARD_TARGET: Target = { minAcked: 0.999, maxDuplicates: 0 };

export function targetMet(verdict: Verdict, target: Target = STANDARD_TARGET): { met: boolean; detail: string } {
  const share = verdict.calls === 0 ? 1 : verdict.acked / verdict.calls;
  const met = share >= target.minAcked && verdict.duplicates <= target.maxDuplicates;
  return {
    met,
    detail: `${(share * 100).toFixed(2)} % of calls acknowledged (target ≥ ${(target.minAcked * 100).toFixed(1)} %), ${verdict.duplicates} duplicates (target ≤ ${target.maxDuplicates})`,
  };
}

/** Violations grouped for a report: kind → count, and a few examples. */
export function summarize(violations: Violation[], examples = 3): string {
  if (violations.length === 0) return "no violations";
  const byKind = new Map<string, Violation[]>();
  for (const v of violations) byKind.set(v.kind, [...(byKind.get(v.kind) ?? []), v]);
  const lines: string[] = [];
  for (const [kind, list] of byKind) {
    lines.push(`${kind}: ${list.length}`);
    for (const v of list.slice(0, examples))
      lines.push(`  ${v.client}${v.stream ? ` ${v.stream}` : ""} @${Math.round(v.t)}ms: ${v.detail}`);
  }
  return lines.join("\n");
}
