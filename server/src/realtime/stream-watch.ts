import { type StreamPosition, ZERO_ID } from "@tether/shared";
import type { Logger } from "pino";
import type { Metrics } from "../observability/metrics.js";
import type { AppendedEvent, HistoryStore, StreamRead } from "../store/types.js";
import { continuity, type Gate } from "./cursor.js";
import { Linger } from "./linger.js";

/** This instance's interest in one stream: the gates of its sockets, and whether Redis confirmed the subscription. */
interface Watched {
  /** The stream's name as its first socket here brought it: one string for all its sockets. */
  name: string;
  gates: Set<Gate>;
  /** Resolves once events appended from now on are sure to arrive here. */
  ready: Promise<boolean>;
  /**
   * Where this instance stands in the stream: it heard every event up to here and none after
   * (undefined: not known, e.g. after a gap or a subscriber reconnect, until the last socket
   * here leaves with its cursor in place). A socket that resumes at exactly it missed nothing.
   */
  heard?: StreamPosition;
}

export interface StreamWatchOptions {
  /**
   * How often a delivery probe goes through each subscriber connection
   * (TETHER_STREAM_CHECK_INTERVAL): one that stopped delivering is reconnected
   * and every stream re-read, so a lost last event arrives within about two.
   */
  checkIntervalMs: number;
  /** How long a stream stays subscribed after its last socket here left (TETHER_SUBSCRIPTION_LINGER). */
  lingerMs: number;
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
 * subscribes to it, and it is unsubscribed once its last one has been gone for
 * the linger time, so only the streams of this instance's sockets reach it. Also
 * runs the delivery probe of the subscriber connections.
 */
export class StreamWatch {
  /** Per stream with a socket here (or lingering): who listens. */
  private readonly watched = new Map<string, Watched>();
  /** Streams whose last socket left: unsubscribed once the linger time passes without one coming back. */
  private readonly linger: Linger<string>;
  /** Stops the subscription and its probe; set once subscribed. */
  private unsubscribeAll: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly history: HistoryStore,
    private readonly options: StreamWatchOptions,
  ) {
    this.linger = new Linger(options.lingerMs, (stream) => {
      if (this.watched.get(stream)?.gates.size !== 0) return;
      this.watched.delete(stream);
      this.history.unwatch(stream);
    });
  }

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
    this.linger.stop();
    this.unsubscribeAll?.();
    this.unsubscribeAll = undefined;
  }

  /**
   * The name this instance already holds for a stream, or `stream` itself: a socket's gate keeps
   * this one, not a string of its own per socket (each handshake builds its stream names anew).
   */
  named(stream: string): string {
    return this.watched.get(stream)?.name ?? stream;
  }

  /** A stream's first socket here subscribes this instance to it. */
  join(stream: string, gate: Gate): void {
    const watched = this.watched.get(stream);
    if (watched) {
      watched.gates.add(gate);
      this.linger.take(stream);
      return;
    }
    const ready = this.history.watch(stream).then(
      () => true,
      () => false, // Redis is unreachable: its reconnect subscribes again and resyncs every stream.
    );
    this.watched.set(stream, { name: stream, gates: new Set([gate]), ready });
  }

  leave(stream: string, gate: Gate): void {
    const watched = this.watched.get(stream);
    if (!watched?.gates.delete(gate) || watched.gates.size > 0) return;
    // The last socket's cursor, in place, is exactly where this instance stands (see `heard`).
    const cursor = gate.cursors.get(stream);
    if (watched.heard === undefined && cursor && !cursor.held) watched.heard = cursor.pos;
    this.linger.park(stream);
  }

  /** Every live event of a watched stream, before it is offered to its sockets: moves `heard` on. */
  hear(event: AppendedEvent): void {
    const watched = this.watched.get(event.stream);
    if (watched?.heard === undefined) return;
    const next = continuity(watched.heard, event);
    if (next === "next") watched.heard = { id: event.id, epoch: event.epoch };
    else if (next === "gap") watched.heard = undefined;
  }

  /** A subscriber connection reconnected: events may have been lost, so where this instance stands is not known. */
  forgetHeard(): void {
    for (const watched of this.watched.values()) watched.heard = undefined;
  }

  /**
   * A resumed socket's read when this instance knows it missed nothing: it resumes at exactly the
   * position this instance heard up to (an event after it would have moved it, and reaches the socket
   * live, as the socket's gate is in place). Undefined when that is not known: the store is read.
   */
  heardAt(stream: string, from: StreamPosition): StreamRead | undefined {
    const heard = this.watched.get(stream)?.heard;
    if (heard === undefined || heard.epoch !== from.epoch || heard.id !== from.id) return;
    return { last: heard.id, epoch: heard.epoch, maxDeleted: ZERO_ID, length: 0, entries: [] };
  }

  /** Every stream watched here with each gate of it: each socket's cursors, one by one. */
  *memberships(): IterableIterator<[string, Gate]> {
    for (const [stream, { gates }] of this.watched) for (const gate of gates) yield [stream, gate];
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
