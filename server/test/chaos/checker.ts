/**
 * The model the chaos suite judges a recorded run against: a pure function over
 * the history (no clocks, no I/O), so every rule can be driven by a handcrafted
 * history in a unit test. Offsets are opaque: publish order comes from the
 * publisher's own sequence numbers, carried in every event's data.
 */

/** One publish, as the publisher saw it. Per stream, publishes are sequential: seq order is publish order. */
export interface PublishRecord {
  stream: string;
  seq: number;
  /** When the request was sent (ms, the recorder's clock). */
  startedAt: number;
  /** When the answer (or the failure) came back. */
  endedAt: number;
  /** True when the server acknowledged it (202 with an offset). */
  acked: boolean;
  offset?: string;
  /** Why it failed, for the report. */
  error?: string;
}

/** What one client saw, at the raw Socket.IO level, in arrival order. */
export type ClientEvent =
  | { t: number; kind: "connect" }
  | { t: number; kind: "disconnect"; reason: string }
  /** `streams` are the streams this connection starts on (the user stream and its rooms' streams). */
  | { t: number; kind: "welcome"; instance: string; streams: string[] }
  | { t: number; kind: "event"; stream: string; seq: number; offset: string }
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
}

export type ViolationKind =
  | "loss"
  | "duplicate"
  | "reorder"
  | "foreign-event"
  | "unauthenticated-with-valid-session"
  | "not-connected-at-end";

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
}

/**
 * Checks the guarantee for every client: every acknowledged publish to one of
 * its streams, sent after the client first started on that stream, is delivered
 * exactly once and in order, or a later `recovery {recovered:false}` for that
 * stream covers it; no event arrives twice or out of publish order (failed
 * publishes that arrive count too); nobody is told their valid session ended.
 */
export function check(history: History): Verdict {
  const violations: Violation[] = [];
  let deliveries = 0;
  let obligations = 0;
  let covered = 0;
  const byStream = new Map<string, PublishRecord[]>();
  for (const p of history.publishes) {
    const list = byStream.get(p.stream) ?? [];
    list.push(p);
    byStream.set(p.stream, list);
  }

  for (const client of history.clients) {
    const entitled = new Set(client.streams);
    /** Per stream: the time this client first started on it (its first welcome naming it). */
    const startedAt = new Map<string, number>();
    const received = new Map<string, Map<number, { t: number; offset: string }>>(); // stream → seq → first receipt
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
          const seen = received.get(e.stream) ?? new Map<number, { t: number; offset: string }>();
          received.set(e.stream, seen);
          if (seen.has(e.seq)) {
            violations.push({
              kind: "duplicate",
              client: client.id,
              stream: e.stream,
              seq: e.seq,
              t: e.t,
              detail: `#${e.seq} again (offset ${e.offset}); first at ${Math.round(seen.get(e.seq)?.t ?? 0)} (offset ${seen.get(e.seq)?.offset})`,
            });
            break;
          }
          seen.set(e.seq, { t: e.t, offset: e.offset });
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
      for (const p of byStream.get(stream) ?? []) {
        // Only acked publishes sent after the client stood on the stream, and before it was
        // (wrongly) stopped: that stop is already a violation of its own.
        if (!p.acked || p.startedAt <= start) continue;
        if (stoppedAt !== undefined && p.endedAt >= stoppedAt) continue;
        obligations++;
        if (seen?.has(p.seq)) continue;
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
        detail: "still not connected after the quiet period",
      });
    }
  }
  return { violations, deliveries, obligations, covered };
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
