import type { RecoveryFailure } from "@tether/shared";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { TalliedCounter } from "./tallied-counter.js";

/** Seconds: a reconnect at the first attempt (50 ms) up to a laptop that slept for minutes. */
export const RECONNECT_DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Events: le="0" counts the recoveries that missed nothing; the top bucket is past the default stream cap (1,000). */
export const REPLAY_SIZE_BUCKETS = [0, 1, 5, 10, 50, 100, 500, 1000, 5000];

/** `tether_recoveries_total`'s `reason`: why a stream was not recovered, or `none`. */
export type RecoveryReason = RecoveryFailure | "none";
const RECOVERY_REASONS: readonly RecoveryFailure[] = ["trimmed", "reset", "invalid"];
/** `tether_reconnect_duration_seconds`'s `credential`. */
type Credential = "token" | "ticket" | "cookie";

/** Why the connection gate refused a connection (`tether_connections_refused_total`'s `reason`). */
export type ConnectionRefusal = "instance" | "address" | "keep_alive";

/**
 * The HTTP connection gate's counts (see `gateConnections`), process-wide like the
 * default process metrics: the gate wraps the HTTP server, which may exist before
 * (or without) a Tether, so every Tether's registry reports the process's counts.
 */
export const connectionCounts: {
  open: number;
  refused: Record<ConnectionRefusal, number>;
  /** Whether the gate is refusing new connections at its instance cap, or new HTTP ones at its keep-alive cap. */
  full: { connections: boolean; keep_alive: boolean };
} = {
  open: 0,
  refused: { instance: 0, address: 0, keep_alive: 0 },
  full: { connections: false, keep_alive: false },
};

/**
 * Tether's Prometheus metrics, on a registry of their own (a host app's
 * default registry is left alone). Served at GET /metrics.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly handshakes = new TalliedCounter({
    name: "tether_handshakes_total",
    help: "Socket.IO handshakes by result: ok, or the refusal's error code.",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly reconnects = new TalliedCounter({
    name: "tether_reconnects_total",
    help: "Accepted handshakes that resumed from an offset (a reconnect rather than a first connect).",
    registers: [this.registry],
  });
  readonly tokens = new TalliedCounter({
    name: "tether_ws_tokens_total",
    help: "WS tokens: issued, consumed (a handshake used one), ticket (a handshake used a resume ticket instead: no HTTP request), cookie (a handshake was signed in by its session cookie: no HTTP request), refused (unknown, used or expired token or ticket).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly sessionEnds = new TalliedCounter({
    name: "tether_session_ends_total",
    help: "Sessions ended while they had sockets, by reason (logout, expired, revoked).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly replayed = new TalliedCounter({
    name: "tether_replayed_events_total",
    help: "Events replayed to reconnecting sockets.",
    registers: [this.registry],
  });
  readonly recoveries = new TalliedCounter({
    name: "tether_recoveries_total",
    help: "Recoveries after a reconnect or a room join from an offset, and streams a live socket could not repair, by outcome (recovered true/false) and reason (none when recovered; else trimmed: older than the recovery window, reset: another epoch, the store lost or rolled back the stream, invalid: not an offset of this stream).",
    labelNames: ["recovered", "reason"] as const,
    registers: [this.registry],
  });
  readonly reconnectDuration = new Histogram({
    name: "tether_reconnect_duration_seconds",
    help: "Time to reconnect as clients report it (handshake auth.awayMs: how long they were without a connection, capped at 24 h), per accepted handshake that carried it, by credential (token, a resume ticket, or the session cookie).",
    labelNames: ["credential"] as const,
    buckets: RECONNECT_DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly replayWaits = new TalliedCounter({
    name: "tether_replay_waits_total",
    help: "Times a replay paused because its socket had TETHER_REPLAY_BUFFER bytes waiting to be sent (a slow or stalled client).",
    registers: [this.registry],
  });
  readonly replaySize = new Histogram({
    name: "tether_replay_size_events",
    help: "Events replayed per recovered stream (one observation per recovery {recovered:true} sent after a reconnect or a room join from an offset; 0 when nothing was missed), by stream (user, room).",
    labelNames: ["stream"] as const,
    buckets: REPLAY_SIZE_BUCKETS,
    registers: [this.registry],
  });
  readonly admissionRefusals = new TalliedCounter({
    name: "tether_admission_refusals_total",
    help: "Handshakes turned away by admission control (UNAVAILABLE with a retry hint), by reason: rate, delay (event loop), full (TETHER_MAX_SOCKETS).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly socketCapacity = new Gauge({
    name: "tether_socket_capacity",
    help: "Socket.IO connections this instance holds before it refuses handshakes (TETHER_MAX_SOCKETS, or derived from the fd limit and memory budget).",
    registers: [this.registry],
  });
  readonly capacityFull = new Gauge({
    name: "tether_capacity_full",
    help: "1 while the instance is full and turns newcomers away (the agent check then answers weight 0), by limit: sockets (TETHER_MAX_SOCKETS), connections (TETHER_HTTP_MAX_CONNECTIONS), keep_alive (TETHER_HTTP_MAX_KEEP_ALIVE_CONNECTIONS).",
    labelNames: ["limit"] as const,
    registers: [this.registry],
    collect() {
      this.set({ limit: "connections" }, connectionCounts.full.connections ? 1 : 0);
      this.set({ limit: "keep_alive" }, connectionCounts.full.keep_alive ? 1 : 0);
    },
  });
  readonly fanoutMessages = new TalliedCounter({
    name: "tether_fanout_messages_total",
    help: "Fan-out messages this instance received: only the streams of its own sockets.",
    registers: [this.registry],
  });
  readonly streamRepairs = new TalliedCounter({
    name: "tether_stream_repairs_total",
    help: "Live streams re-read for a socket, by cause: gap (a fan-out message was lost), epoch (the store lost or rolled back the stream), resync (a subscriber connection reconnected, after a drop or forced when its delivery probe did not return), subscribe (a stream's first socket here, once its subscription was confirmed).",
    labelNames: ["cause"] as const,
    registers: [this.registry],
  });
  readonly probeFailures = new TalliedCounter({
    name: "tether_probe_failures_total",
    help: "Delivery probes that did not return through their subscriber connection in time: the connection was reconnected and every stream re-read.",
    registers: [this.registry],
  });
  readonly storeDuration = new Histogram({
    name: "tether_redis_command_duration_seconds",
    help: "Duration of Tether's store operations (one Redis round trip each).",
    labelNames: ["op"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly storeErrors = new TalliedCounter({
    name: "tether_redis_errors_total",
    help: "Store operations that failed (Redis unreachable, timeout).",
    labelNames: ["op"] as const,
    registers: [this.registry],
  });
  readonly redisUnsafeConfig = new Gauge({
    name: "tether_redis_unsafe_config",
    help: "1 when Redis is configured so that it can lose Tether's state (check: persistence = off, eviction = maxmemory-policy other than noeviction), 0 when safe; absent when Redis refused CONFIG GET.",
    labelNames: ["check"] as const,
    registers: [this.registry],
  });
  readonly draining = new Gauge({
    name: "tether_drain_remaining_sockets",
    help: "While draining: sockets still to be moved to other instances (0 otherwise).",
    registers: [this.registry],
  });

  /** What `/readyz` would say (set once the instance knows how to tell). */
  private readiness: () => Promise<boolean> = async () => true;
  /** The last answer: a scrape never waits on Redis (a stalled Redis must not stall /metrics). */
  private ready = true;
  private measuring = false;

  /** Sets how `tether_ready` is measured: the same conditions as `/readyz`. */
  measureReadiness(ready: () => Promise<boolean>): void {
    this.readiness = ready;
  }

  /** Reports the last measure and starts the next one (so the gauge is one scrape behind). */
  private readinessNow(): boolean {
    if (!this.measuring) {
      this.measuring = true;
      this.readiness().then(
        (ready) => {
          this.ready = ready;
          this.measuring = false;
        },
        () => {
          this.ready = false;
          this.measuring = false;
        },
      );
    }
    return this.ready;
  }

  constructor(connectedSockets: () => number) {
    const metrics = this;
    new Gauge({
      name: "tether_ready",
      help: "1 when this instance is ready (/readyz: Redis reachable, not draining), 0 otherwise; as of the previous scrape.",
      registers: [this.registry],
      collect() {
        this.set(metrics.readinessNow() ? 1 : 0);
      },
    });
    new Gauge({
      name: "tether_connected_sockets",
      help: "Sockets connected to this instance.",
      registers: [this.registry],
      collect() {
        this.set(connectedSockets());
      },
    });
    new Gauge({
      name: "tether_http_connections",
      help: "Open HTTP connections (WebSockets included) on this process's gated HTTP server (TETHER_HTTP_MAX_CONNECTIONS is its cap).",
      registers: [this.registry],
      collect() {
        this.set(connectionCounts.open);
      },
    });
    new Counter({
      name: "tether_connections_refused_total",
      help: "Connections answered 503 + Retry-After by the connection gate, by reason: instance (past TETHER_HTTP_MAX_CONNECTIONS), address (past TETHER_MAX_CONNECTIONS_PER_IP), keep_alive (past TETHER_HTTP_MAX_KEEP_ALIVE_CONNECTIONS).",
      labelNames: ["reason"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [reason, count] of Object.entries(connectionCounts.refused)) this.inc({ reason }, count);
      },
    });
    collectDefaultMetrics({ register: this.registry });
    // Every label value a dashboard or an alert selects is exposed from the start, at 0: no
    // "no data" until the first failure of a kind.
    this.recoveries.inc({ recovered: "true", reason: "none" }, 0);
    for (const reason of RECOVERY_REASONS) this.recoveries.inc({ recovered: "false", reason }, 0);
    for (const credential of ["token", "ticket", "cookie"] satisfies Credential[])
      this.reconnectDuration.zero({ credential });
    for (const stream of ["user", "room"]) this.replaySize.zero({ stream });
    this.capacityFull.set({ limit: "sockets" }, 0);
  }

  /** One recovery's outcome: recovered (`none`), or why not. */
  recovery(reason: RecoveryReason): void {
    this.recoveries.inc({ recovered: reason === "none" ? "true" : "false", reason });
  }

  /** Times one store operation and counts its failure. */
  async timeStore<T>(op: string, run: () => Promise<T>): Promise<T> {
    // Not prom-client's startTimer: a closure, an hrtime pair and a merged labels object per call.
    const started = performance.now();
    try {
      return await run();
    } catch (err) {
      this.storeErrors.inc({ op });
      throw err;
    } finally {
      this.storeDuration.observe({ op }, (performance.now() - started) / 1000);
    }
  }
}
