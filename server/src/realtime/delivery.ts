import { compareIds, ErrorCode, type RecoveryPayload, ServerEvent, type WelcomePayload, ZERO_ID } from "@tether/shared";
import type { Logger } from "pino";
import { TetherError } from "../errors.js";
import type { Metrics } from "../observability/metrics.js";
import type { AppendedEvent, HistoryStore, StreamHead, StreamRead } from "../store/types.js";
import { type Continuity, type Cursor, continuity } from "./cursor.js";
import { offsetOf, positionOf, type StreamStart, startFrom } from "./recovery.js";
import { Replayer, roomField } from "./replay.js";
import { onLeave } from "./socket-lifetime.js";
import { roomOf } from "./streams.js";
import type { TetherServer, TetherSocket } from "./types.js";

/** Live events held for one socket's stream while it is read; past this it is disconnected and retries. */
const MAX_HELD = 10_000;
/** Backoff between attempts to re-read a stream while the store is unreachable. */
const REPAIR_RETRY_MS = { first: 100, max: 2_000 } as const;

type RepairCause = "gap" | "epoch" | "resync" | "subscribe";

interface Gate {
  socket: TetherSocket;
  cursors: Map<string, Cursor>;
  /** What the connect needs until `welcome` and the first reads; dropped then (a connected socket keeps its cursors only). */
  connecting?: Connecting;
}

interface Connecting {
  /** Where each stream starts, from what the client sent. */
  starts: Map<string, StreamStart>;
  /** Heads the handshake already read (the user stream's, with the token): no second read. */
  heads?: Map<string, StreamHead>;
  /** More for `welcome` (the resume ticket). */
  welcome?: Partial<WelcomePayload>;
}

/** What the handshake hands over besides the offsets. */
export interface PrepareOptions {
  /** Stream heads read during the handshake (folded into the token's consume). */
  heads?: Map<string, StreamHead>;
  /** Fields added to this socket's `welcome`. */
  welcome?: Partial<WelcomePayload>;
}

/** This instance's interest in one stream: the gates of its sockets, and whether Redis confirmed the subscription. */
interface Watched {
  gates: Set<Gate>;
  /** Resolves once events appended from now on are sure to arrive here. */
  ready: Promise<boolean>;
}

export interface DeliveryOptions {
  instanceId: string;
  /**
   * How often a delivery probe goes through each subscriber connection
   * (TETHER_STREAM_CHECK_INTERVAL): one that stopped delivering is reconnected
   * and every stream re-read, so a lost last event arrives within about two.
   */
  checkIntervalMs: number;
  /** Replayed bytes one socket may have waiting to be sent: past them its replay waits for it to drain. */
  replayBufferBytes: number;
  metrics: Metrics;
  logger: Logger;
}

/**
 * Delivers published events to this instance's sockets, exactly once and in
 * stream order per stream, or says `recovery {recovered:false}`.
 *
 * Every fan-out message carries the id before it (`prev`) and the stream's
 * epoch. A socket's cursor takes a live event only when it is the next one;
 * a gap (a lost message), an epoch change, or a reconnect of the fan-out
 * connection (after a drop, or forced when its delivery probe did not return)
 * makes it re-read the stream from the cursor, holding live events meanwhile.
 * A lost last event (nothing after it reveals the gap) is lost only with its
 * connection, so the reconnect's re-read finds it: no per-stream head check.
 * On connect the same read replays what the client missed.
 */
export class Delivery {
  private readonly gates = new Map<string, Gate>();
  /** Per stream with a socket here: who listens. Only these streams' events reach this instance. */
  private readonly watched = new Map<string, Watched>();
  /** Store reads (shared by every socket at one position) and replays to sockets. */
  private readonly replayer: Replayer;
  /** Stops the subscription and its probe; set once subscribed. */
  private unsubscribeAll: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly io: TetherServer,
    private readonly history: HistoryStore,
    private readonly options: DeliveryOptions,
  ) {
    this.replayer = new Replayer(history, options);
  }

  /** Starts receiving appended events (from every instance and publisher), and the delivery probe. */
  async start(): Promise<void> {
    const { metrics, logger } = this.options;
    const unsubscribe = await this.history.subscribe(
      {
        onEvent: (event) => this.onEvent(event),
        onResync: () => this.resyncAll(),
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

  /**
   * In the handshake, before the socket joins its rooms: holds its live events
   * from now on, and notes where each stream starts. `requested` maps stream →
   * the offset the client sent. No store read: the reads come after the join,
   * so nothing published in between can slip past both the read and the room.
   * The gate goes with the socket, whichever way it leaves (mid-handshake too).
   */
  prepare(socket: TetherSocket, requested: Map<string, unknown>, options: PrepareOptions = {}): void {
    const starts = new Map([...requested].map(([stream, offset]) => [stream, startFrom(offset)]));
    const cursors = new Map<string, Cursor>(
      [...requested.keys()].map((stream) => [stream, { pos: { id: "0-0", epoch: "" }, held: [] }]),
    );
    const gate: Gate = { socket, cursors, connecting: { starts, heads: options.heads, welcome: options.welcome } };
    this.gates.set(socket.id, gate);
    for (const stream of cursors.keys()) this.join(stream, gate);
    onLeave(socket, () => {
      this.gates.delete(socket.id);
      for (const stream of cursors.keys()) this.leave(stream, gate);
    });
  }

  /** A stream's first socket here subscribes this instance to it. */
  private join(stream: string, gate: Gate): void {
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

  private leave(stream: string, gate: Gate): void {
    const watched = this.watched.get(stream);
    if (!watched?.gates.delete(gate) || watched.gates.size > 0) return;
    this.watched.delete(stream);
    this.history.unwatch(stream);
  }

  /**
   * Where a fresh socket starts: at a live socket's cursor of the same stream
   * here (exact: anything after it arrives live), else at the head the
   * handshake read or a read made now. A head read before this instance's
   * subscription was confirmed may miss an event appended in between: the
   * stream is checked again once the subscription is in place.
   */
  private async freshStart(gate: Gate, stream: string): Promise<StreamHead> {
    for (const other of this.watched.get(stream)?.gates ?? []) {
      const cursor = other.cursors.get(stream);
      if (other !== gate && cursor && !cursor.held) return { last: cursor.pos.id, epoch: cursor.pos.epoch };
    }
    const watched = this.watched.get(stream);
    const known = gate.connecting?.heads?.get(stream);
    if (known) {
      void watched?.ready.then((ok) => {
        if (ok) void this.checkStream(stream);
      });
      return known;
    }
    await watched?.ready;
    return this.history.head(stream);
  }

  /** After connect: `welcome`, then each stream's missed events and `recovery`, then live. */
  async resume(socket: TetherSocket): Promise<void> {
    const gate = this.gates.get(socket.id);
    const connecting = gate?.connecting;
    if (!gate || !connecting) return;
    try {
      const firsts = await Promise.all(
        [...connecting.starts].map(async ([stream, start]) => {
          if (start.kind !== "resume") {
            const head = await this.freshStart(gate, stream);
            return { stream, start, read: { ...head, maxDeleted: ZERO_ID, length: 0, entries: [] } };
          }
          // The replay reads once this instance listens: nothing appended after the read can slip by.
          await this.watched.get(stream)?.ready;
          return { stream, start, read: await this.replayer.read(stream, start.from.id) };
        }),
      );
      gate.connecting = undefined;
      const welcome: WelcomePayload = { ...connecting.welcome, instance: this.options.instanceId, offset: "0-0" };
      const rooms: Record<string, string> = {};
      for (const { stream, read } of firsts) {
        const room = roomOf(stream);
        if (room === undefined) welcome.offset = offsetOf(positionOf(read));
        else rooms[room] = offsetOf(positionOf(read));
      }
      socket.emit(ServerEvent.Welcome, Object.keys(rooms).length > 0 ? { ...welcome, rooms } : welcome);

      for (const { stream, start, read } of firsts) await this.begin(gate, stream, start, read);
    } catch (err) {
      // The store failed mid-replay: the client reconnects with the same offset and tries again.
      this.options.logger.warn({ err: (err as Error).message, socket: socket.id }, "replay failed; disconnecting");
      socket.disconnect(true);
    }
  }

  /**
   * Adds a stream to a connected socket (a room joined at runtime), from the
   * offset the client sent for it, if any: its missed events are replayed, then
   * live ones follow, exactly as for the streams of the handshake. Resolves to
   * the `recovery` the socket was also sent (a fresh join: recovered, none missed).
   * Rejects when the store is unreachable (the stream is not added).
   */
  async subscribe(
    socket: TetherSocket,
    stream: string,
    offset: unknown,
  ): Promise<RecoveryPayload & { offset: string }> {
    const gate = this.gates.get(socket.id);
    if (!gate) throw new Error("subscribe: the socket is not connected here");
    const present = gate.cursors.get(stream);
    if (present) return { recovered: true, missed: 0, ...roomField(stream), offset: offsetOf(present.pos) };
    gate.cursors.set(stream, { pos: { id: ZERO_ID, epoch: "" }, held: [] });
    this.join(stream, gate);
    try {
      const start = startFrom(offset);
      const read =
        start.kind === "resume"
          ? await this.watched.get(stream)?.ready.then(() => this.replayer.read(stream, start.from.id))
          : { ...(await this.freshStart(gate, stream)), maxDeleted: ZERO_ID, length: 0, entries: [] };
      if (!read) throw new Error("subscribe: not watched");
      const report = await this.begin(gate, stream, start, read);
      // Its cursor went meanwhile (the stream was taken off the socket): nothing was reported, the join fails.
      if (!report) throw new TetherError(ErrorCode.Unavailable, "The stream was left while it was being joined.");
      return { ...report, offset: offsetOf(gate.cursors.get(stream)?.pos ?? positionOf(read)) };
    } catch (err) {
      this.unsubscribe(socket, stream);
      throw err;
    }
  }

  /** Removes a stream from a socket (a room left at runtime): its events stop at once. */
  unsubscribe(socket: TetherSocket, stream: string): void {
    const gate = this.gates.get(socket.id);
    if (!gate?.cursors.delete(stream)) return;
    this.leave(stream, gate);
  }

  /**
   * The first read of one stream for a socket: replay (or where a fresh start stands), report, then live.
   * Undefined when the stream was taken off the socket meanwhile (nothing is reported).
   */
  private async begin(
    gate: Gate,
    stream: string,
    start: StreamStart,
    read: StreamRead,
  ): Promise<RecoveryPayload | undefined> {
    const cursor = gate.cursors.get(stream);
    if (!cursor) return undefined;
    let report: RecoveryPayload | undefined = { recovered: true, missed: 0, ...roomField(stream) };
    if (start.kind === "resume") {
      report = await this.replayer.replay(gate, stream, start.from, read, { report: "always", trusted: false });
    } else {
      cursor.pos = positionOf(read);
      if (start.kind === "unusable") report = this.replayer.reportLost(gate, stream, 0, "invalid");
    }
    this.release(gate, stream);
    return report;
  }

  /** One appended event, to every local socket of its stream that is at the event before it. */
  private onEvent(event: AppendedEvent): void {
    try {
      this.options.metrics.fanoutMessages.inc();
      const members = this.watched.get(event.stream)?.gates;
      if (!members) return;
      const ready: string[] = [];
      for (const gate of members) if (this.offer(gate, event) === "next") ready.push(gate.socket.id);
      // One encode for every socket that takes it.
      if (ready.length > 0) this.replayer.emit(this.io.local.to(ready), event.stream, event, event.epoch);
    } catch (err) {
      // Nothing may escape into the Redis client's message handler.
      this.options.logger.error({ err: (err as Error).message, stream: event.stream }, "live delivery failed");
    }
  }

  /** Offers a live event to a socket's cursor: holds it, drops it, or starts a repair. */
  private offer(gate: Gate, event: AppendedEvent): Continuity | "held" {
    const cursor = gate.cursors.get(event.stream);
    if (!cursor) return "seen";
    if (cursor.held) {
      cursor.held.push(event);
      if (cursor.held.length > MAX_HELD) gate.socket.disconnect(true);
      return "held";
    }
    const verdict = continuity(cursor.pos, event);
    if (verdict === "next") cursor.pos = { id: event.id, epoch: event.epoch };
    if (verdict === "gap") this.repair(gate, event.stream, event.epoch === cursor.pos.epoch ? "gap" : "epoch", event);
    return verdict;
  }

  /** Lets a stream's held events through (after its read), each checked like a live one. */
  private release(gate: Gate, stream: string): void {
    const cursor = gate.cursors.get(stream);
    const held = cursor?.held;
    if (!cursor || !held) return;
    cursor.held = undefined;
    for (const event of held) {
      if (this.offer(gate, event) === "next") this.replayer.emit(gate.socket, stream, event, event.epoch);
    }
    if (cursor.recheck && !cursor.held) {
      const cause = cursor.recheck;
      cursor.recheck = undefined;
      this.repair(gate, stream, cause);
    }
  }

  /**
   * Re-reads a stream for one socket from its cursor, holding live events
   * meanwhile; retried with backoff while the store is unreachable (live events
   * keep being held, up to MAX_HELD).
   */
  private repair(gate: Gate, stream: string, cause: RepairCause, first?: AppendedEvent): void {
    const cursor = gate.cursors.get(stream);
    if (!cursor || cursor.held) return;
    cursor.held = first ? [first] : [];
    this.options.metrics.streamRepairs.inc({ cause });
    void (async () => {
      for (let attempt = 0; this.gates.get(gate.socket.id) === gate; attempt++) {
        try {
          const read = await this.replayer.read(stream, cursor.pos.id);
          await this.replayer.replay(gate, stream, cursor.pos, read, { report: "failure", trusted: true });
          this.release(gate, stream);
          return;
        } catch (err) {
          if (attempt === 0)
            this.options.logger.warn({ err: (err as Error).message, stream }, "stream re-read failed; retrying");
          const delay = Math.min(REPAIR_RETRY_MS.first * 2 ** attempt, REPAIR_RETRY_MS.max);
          await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random() / 2)));
        }
      }
    })();
  }

  /**
   * A subscriber connection reconnected (after a drop, or forced by the probe):
   * messages may have been lost, so every cursor of every watched stream
   * re-reads; one being read now is re-read once released (its read may have
   * started before the loss).
   */
  private resyncAll(): void {
    for (const gate of this.gates.values()) {
      for (const [stream, cursor] of gate.cursors) {
        if (cursor.held) cursor.recheck = "resync";
        else this.repair(gate, stream, "resync");
      }
    }
  }

  /**
   * Compares one stream's head with every cursor of it here (the subscription
   * was just confirmed): a cursor behind re-reads; one still being read is
   * re-read once it is released.
   */
  private async checkStream(stream: string): Promise<void> {
    const head = await this.history.head(stream).catch(() => undefined);
    for (const gate of this.watched.get(stream)?.gates ?? []) {
      const cursor = gate.cursors.get(stream);
      if (!cursor) continue;
      if (cursor.held) cursor.recheck ??= "subscribe";
      else if (!head || head.epoch !== cursor.pos.epoch || compareIds(head.last, cursor.pos.id) !== 0)
        this.repair(gate, stream, "subscribe");
    }
  }
}
