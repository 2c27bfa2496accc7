import type { Logger } from "pino";
import type { Metrics } from "../observability/metrics.js";
import type { AppendedEvent, HistoryStore } from "../store/types.js";
import type { Gate } from "./cursor.js";

/** This instance's interest in one stream: the gates of its sockets, and whether Redis confirmed the subscription. */
interface Watched {
  gates: Set<Gate>;
  /** Resolves once events appended from now on are sure to arrive here. */
  ready: Promise<boolean>;
}

export interface StreamWatchOptions {
  /**
   * How often a delivery probe goes through each subscriber connection
   * (TETHER_STREAM_CHECK_INTERVAL): one that stopped delivering is reconnected
   * and every stream re-read, so a lost last event arrives within about two.
   */
  checkIntervalMs: number;
  metrics: Metrics;
  logger: Logger;
}

/** What the subscription hands on: each appended event, and word that some may have been lost. */
export interface WatchHandlers {
  onEvent(event: AppendedEvent): void;
  /** A subscriber connection reconnected (after a drop, or forced by the probe): every stream must be re-read. */
  onResync(): void;
}

/**
 * The streams this instance listens to: a stream's first socket here
 * subscribes to it and its last unsubscribes, so only the streams of this
 * instance's sockets reach it. Also runs the delivery probe of the subscriber
 * connections.
 */
export class StreamWatch {
  /** Per stream with a socket here: who listens. */
  private readonly watched = new Map<string, Watched>();
  /** Stops the subscription and its probe; set once subscribed. */
  private unsubscribeAll: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly history: HistoryStore,
    private readonly options: StreamWatchOptions,
  ) {}

  /** Starts receiving appended events (from every instance and publisher), and the delivery probe. */
  async start(handlers: WatchHandlers): Promise<void> {
    const { metrics, logger } = this.options;
    const unsubscribe = await this.history.subscribe(
      {
        onEvent: handlers.onEvent,
        onResync: handlers.onResync,
        onProbeLost: (node, silentMs) => {
          metrics.probeFailures.inc();
          logger.warn({ node: node || undefined, silentMs }, "delivery probe did not return; resubscribing");
        },
      },
      { probeIntervalMs: this.options.checkIntervalMs },
    );
    if (this.stopped) unsubscribe();
    else this.unsubscribeAll = unsubscribe;
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribeAll?.();
    this.unsubscribeAll = undefined;
  }

  /** A stream's first socket here subscribes this instance to it. */
  join(stream: string, gate: Gate): void {
    const watched = this.watched.get(stream);
    if (watched) {
      watched.gates.add(gate);
      return;
    }
    const ready = this.history.watch(stream).then(
      () => true,
      () => false, // Redis is unreachable: its reconnect subscribes again and resyncs every stream.
    );
    this.watched.set(stream, { gates: new Set([gate]), ready });
  }

  leave(stream: string, gate: Gate): void {
    const watched = this.watched.get(stream);
    if (!watched?.gates.delete(gate) || watched.gates.size > 0) return;
    this.watched.delete(stream);
    this.history.unwatch(stream);
  }

  /** The gates of a stream's sockets here (none when it is not watched). */
  gatesOf(stream: string): ReadonlySet<Gate> | undefined {
    return this.watched.get(stream)?.gates;
  }

  /**
   * Resolves once events appended to the stream from now on are sure to reach
   * this instance (false: Redis was unreachable; its reconnect resyncs).
   * Undefined when the stream is not watched.
   */
  ready(stream: string): Promise<boolean> | undefined {
    return this.watched.get(stream)?.ready;
  }
}
