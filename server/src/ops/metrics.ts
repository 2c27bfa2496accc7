import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/**
 * Tether's Prometheus metrics, on a registry of their own (a host app's
 * default registry is left alone). Served at GET /metrics.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly handshakes = new Counter({
    name: "tether_handshakes_total",
    help: "Socket.IO handshakes by result: ok, or the refusal's error code.",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly reconnects = new Counter({
    name: "tether_reconnects_total",
    help: "Accepted handshakes that resumed from an offset (a reconnect rather than a first connect).",
    registers: [this.registry],
  });
  readonly tokens = new Counter({
    name: "tether_ws_tokens_total",
    help: "WS tokens: issued, consumed (a handshake used one), ticket (a handshake used a resume ticket instead: no HTTP request), refused (unknown, used or expired token or ticket).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly sessionEnds = new Counter({
    name: "tether_session_ends_total",
    help: "Sessions ended while they had sockets, by reason (logout, expired, revoked).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly replayed = new Counter({
    name: "tether_replayed_events_total",
    help: "Events replayed to reconnecting sockets.",
    registers: [this.registry],
  });
  readonly recoveries = new Counter({
    name: "tether_recoveries_total",
    help: "Recoveries after a reconnect, by outcome (recovered true/false).",
    labelNames: ["recovered"] as const,
    registers: [this.registry],
  });
  readonly admissionRefusals = new Counter({
    name: "tether_admission_refusals_total",
    help: "Handshakes turned away by admission control (UNAVAILABLE with a retry hint), by reason: rate, delay (event loop).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly fanoutMessages = new Counter({
    name: "tether_fanout_messages_total",
    help: "Fan-out messages this instance received: only the streams of its own sockets.",
    registers: [this.registry],
  });
  readonly streamRepairs = new Counter({
    name: "tether_stream_repairs_total",
    help: "Live streams re-read for a socket, by cause: gap (a fan-out message was lost), epoch (the store lost or rolled back the stream), resync (the subscriber reconnected), check (the periodic head check), subscribe (a stream's first socket here, once its subscription was confirmed).",
    labelNames: ["cause"] as const,
    registers: [this.registry],
  });
  readonly storeDuration = new Histogram({
    name: "tether_redis_command_duration_seconds",
    help: "Duration of Tether's store operations (one Redis round trip each).",
    labelNames: ["op"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly storeErrors = new Counter({
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
    collectDefaultMetrics({ register: this.registry });
  }

  /** Times one store operation and counts its failure. */
  async timeStore<T>(op: string, run: () => Promise<T>): Promise<T> {
    const end = this.storeDuration.startTimer({ op });
    try {
      return await run();
    } catch (err) {
      this.storeErrors.inc({ op });
      throw err;
    } finally {
      end();
    }
  }
}
