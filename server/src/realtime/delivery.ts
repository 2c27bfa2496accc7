import { type RecoveryPayload, ZERO_ID } from "@tether/shared";
import type { Logger } from "pino";
import type { Metrics } from "../observability/metrics.js";
import type { AppendedEvent, HistoryStore, StreamHead } from "../store/types.js";
import { CatchUp } from "./catch-up.js";
import { Cursor, Gate, type StartOffsets } from "./cursor.js";
import { offsetOf, startFrom } from "./recovery.js";
import { StreamRepair } from "./repair.js";
import { Replayer, roomField } from "./replay.js";
import { GATE_SLOT as GATE } from "./socket-class.js";
import type { SocketLifetime } from "./socket-lifetime.js";
import { StreamWatch } from "./stream-watch.js";
import type { TetherServer, TetherSocket } from "./types.js";

/** What the handshake hands over besides the offsets. */
export interface PrepareOptions {
  /** Stream heads read during the handshake (folded into the token's consume). */
  heads?: Map<string, StreamHead>;
  /**
   * Called once where every stream starts is known, before anything is
   * replayed: the handshake sends `welcome` here, so it precedes the missed events.
   * `recoveries` are those that go in `welcome` (see `recoveryInWelcome`), else empty.
   */
  onStart: (offsets: StartOffsets, recoveries: RecoveryPayload[]) => void;
  /**
   * The client reads recoveries inside `welcome`: when no stream has anything to replay
   * (a reconnect that missed nothing), they go there rather than as one `recovery` frame each.
   */
  recoveryInWelcome?: boolean;
}

export interface DeliveryOptions {
  /**
   * How often a delivery probe goes through each subscriber connection
   * (TETHER_STREAM_CHECK_INTERVAL): one that stopped delivering is reconnected
   * and every stream re-read, so a lost last event arrives within about two.
   */
  checkIntervalMs: number;
  /** How long a stream stays subscribed after its last socket here left (TETHER_SUBSCRIPTION_LINGER). */
  lingerMs: number;
  /** Replayed bytes one socket may have waiting to be sent: past them its replay waits for it to drain. */
  replayBufferBytes: number;
  metrics: Metrics;
  logger: Logger;
}

/**
 * Each socket's gate here: in a slot its class declares (`GATE_SLOT`, `makeSocketsGuarded`),
 * not a table entry: no memory per socket beyond the gate itself.
 */
type Gated = TetherSocket & { [GATE]?: Gate | undefined };
const gateOf = (socket: TetherSocket): Gate | undefined => (socket as Gated)[GATE];

/**
 * Delivers published events to this instance's sockets, exactly once and in
 * stream order per stream, or says `recovery {recovered:false}`.
 *
 * Every fan-out message carries the id before it (`prev`) and the stream's
 * epoch. A socket's cursor takes a live event only when it is the next one;
 * a gap (a lost message), an epoch change, or a reconnect of the fan-out
 * connection (after a drop, or forced when its delivery probe did not return)
 * makes it re-read the stream from the cursor, holding live events meanwhile
 * (`StreamRepair`). A lost last event (nothing after it reveals the gap) is
 * lost only with its connection, so the reconnect's re-read finds it: no
 * per-stream head check. On connect the same read replays what the client
 * missed (`CatchUp`). Only the streams of this instance's sockets reach it
 * (`StreamWatch`).
 */
export class Delivery {
  private readonly watch: StreamWatch;
  /** Store reads (shared by every socket at one position) and replays to sockets. */
  private readonly replayer: Replayer;
  private readonly repair: StreamRepair;
  private readonly catchUp: CatchUp;
  private readonly part: number;

  constructor(
    private readonly io: TetherServer,
    history: HistoryStore,
    private readonly options: DeliveryOptions,
    private readonly lifetime: SocketLifetime,
  ) {
    this.part = lifetime.part({ release: (socket) => this.release(socket) });
    this.watch = new StreamWatch(history, options);
    this.replayer = new Replayer(history, options);
    this.repair = new StreamRepair(history, this.watch, this.replayer, {
      isCurrent: (gate) => gateOf(gate.socket) === gate,
      metrics: options.metrics,
      logger: options.logger,
    });
    this.catchUp = new CatchUp(history, this.watch, this.replayer, this.repair, options.logger);
  }

  /** Starts receiving appended events (from every instance and publisher), and the delivery probe. */
  start(): Promise<void> {
    return this.watch.start({
      onEvent: (event) => this.onEvent(event),
      onResync: () => {
        this.watch.forgetHeard();
        this.repair.resyncAll([...this.watch.memberships()]);
      },
    });
  }

  stop(): void {
    this.watch.stop();
  }

  /**
   * In the handshake, before the socket joins its rooms: holds its live events
   * from now on, and notes where each stream starts. `requested` maps stream →
   * the offset the client sent. No store read: the reads come after the join,
   * so nothing published in between can slip past both the read and the room.
   * The gate goes with the socket, whichever way it leaves (mid-handshake too).
   */
  prepare(socket: TetherSocket, requested: Map<string, unknown>, options: PrepareOptions): void {
    const starts = new Map([...requested].map(([stream, offset]) => [stream, startFrom(offset)]));
    const streams = [...requested.keys()].map((stream) => this.watch.named(stream));
    const gate = new Gate(socket, streams, {
      starts,
      heads: options.heads,
      onStart: options.onStart,
      recoveryInWelcome: options.recoveryInWelcome === true,
    });
    (socket as Gated)[GATE] = gate;
    for (const stream of gate.keys()) this.watch.join(stream, gate);
    this.lifetime.took(socket, this.part);
  }

  /** The socket left: its gate and its streams' memberships go. */
  private release(socket: TetherSocket): void {
    const gate = gateOf(socket);
    if (gate === undefined) return;
    (socket as Gated)[GATE] = undefined;
    for (const stream of gate.cursors.keys()) this.watch.leave(stream, gate);
  }

  /** After connect: where each stream starts (the handshake's `welcome`), then each stream's missed events and `recovery`, then live. */
  async resume(socket: TetherSocket): Promise<void> {
    const gate = gateOf(socket);
    if (gate) await this.catchUp.connect(gate);
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
    const gate = gateOf(socket);
    if (!gate) throw new Error("subscribe: the socket is not connected here");
    const present = gate.cursors.get(stream);
    if (present) return { recovered: true, missed: 0, ...roomField(stream), offset: offsetOf(present.pos) };
    gate.cursors.set(stream, new Cursor({ id: ZERO_ID, epoch: "" }, []));
    this.watch.join(stream, gate);
    try {
      return await this.catchUp.join(gate, stream, offset);
    } catch (err) {
      this.unsubscribe(socket, stream);
      throw err;
    }
  }

  /** Removes a stream from a socket (a room left at runtime): its events stop at once. */
  unsubscribe(socket: TetherSocket, stream: string): void {
    const gate = gateOf(socket);
    if (!gate?.cursors.delete(stream)) return;
    this.watch.leave(stream, gate);
  }

  /** The ids of this instance's sockets of a stream (a user's or a room's): none when it is not watched here. */
  socketIdsOf(stream: string): string[] {
    const gates = this.watch.gatesOf(stream);
    return gates === undefined ? [] : [...gates].map((gate) => gate.socket.id);
  }

  /** One appended event, to every local socket of its stream that is at the event before it. */
  private onEvent(event: AppendedEvent): void {
    try {
      this.options.metrics.fanoutMessages.inc();
      this.watch.hear(event);
      const members = this.watch.gatesOf(event.stream);
      if (!members) return;
      const ready: string[] = [];
      for (const gate of members) if (this.repair.offer(gate, event) === "next") ready.push(gate.socket.id);
      // One encode for every socket that takes it.
      if (ready.length > 0) this.replayer.emit(this.io.local.to(ready), event.stream, event, event.epoch);
    } catch (err) {
      // Nothing may escape into the Redis client's message handler.
      this.options.logger.error({ err: (err as Error).message, stream: event.stream }, "live delivery failed");
    }
  }
}
