import { ErrorCode, type RecoveryPayload, type StreamPosition, ZERO_ID } from "@tether/shared";
import type { Logger } from "pino";
import { TetherError } from "../errors.js";
import type { HistoryStore, StreamHead, StreamRead } from "../store/types.js";
import type { Gate } from "./cursor.js";
import { offsetOf, positionOf, type StreamStart, startFrom, unrecoverable } from "./recovery.js";
import type { StreamRepair } from "./repair.js";
import { type Replayer, roomField } from "./replay.js";
import type { StreamWatch } from "./stream-watch.js";

/**
 * A socket's first read of each of its streams: on connect (where every
 * stream starts, then each one's missed events and `recovery`), and when a
 * stream is added at runtime (a room joined). Fresh streams start at the head;
 * resumed ones replay from the client's offset. Live events are held until
 * then, and released after.
 */
export class CatchUp {
  constructor(
    private readonly history: HistoryStore,
    private readonly watch: StreamWatch,
    private readonly replayer: Replayer,
    private readonly repair: StreamRepair,
    private readonly logger: Logger,
  ) {}

  /** After connect: where each stream starts (`onStart`), then each stream's missed events and `recovery`, then live. */
  async connect(gate: Gate): Promise<void> {
    const { socket, connecting } = gate;
    if (!connecting) return;
    try {
      const firsts = await Promise.all(
        [...connecting.starts].map(async ([stream, start]) => {
          if (start.kind !== "resume") return { stream, start, read: await this.freshStart(gate, stream) };
          // No read when this instance knows the client is exactly where the stream stands.
          const known = this.knownAt(gate, stream, start.from);
          if (known) return { stream, start, read: known };
          // The replay reads once this instance listens: nothing appended after the read can slip by.
          await this.watch.ready(stream);
          return { stream, start, read: await this.replayer.read(stream, start.from.id) };
        }),
      );
      gate.connecting = undefined;
      const offsets = new Map(firsts.map(({ stream, read }) => [stream, offsetOf(positionOf(read))]));
      if (connecting.recoveryInWelcome && firsts.every(({ start, read }) => nothingToReplay(start, read))) {
        // Nothing to replay anywhere (a reconnect that missed nothing): the recoveries ride in `welcome`,
        // one frame instead of one per stream. Live events held meanwhile follow `welcome`.
        const recoveries: RecoveryPayload[] = [];
        for (const { stream, start, read } of firsts) {
          const report = await this.settle(gate, stream, start, read, "returned");
          if (report && start.kind === "resume") recoveries.push(report);
        }
        connecting.onStart(offsets, recoveries);
        for (const { stream } of firsts) this.repair.release(gate, stream);
        return;
      }
      connecting.onStart(offsets, []);
      for (const { stream, start, read } of firsts) await this.begin(gate, stream, start, read);
    } catch (err) {
      // The store failed mid-replay: the client reconnects with the same offset and tries again.
      this.logger.warn({ err: (err as Error).message, socket: socket.id }, "replay failed; disconnecting");
      socket.disconnect(true);
    }
  }

  /**
   * A stream just added to a connected socket (its cursor is in place, holding):
   * replays from the offset the client sent for it, if any, then live. Resolves
   * to the `recovery` the socket was also sent (a fresh join: recovered, none
   * missed). Rejects when the store is unreachable, or the stream was taken off
   * the socket meanwhile.
   */
  async join(gate: Gate, stream: string, offset: unknown): Promise<RecoveryPayload & { offset: string }> {
    const start = startFrom(offset);
    const read =
      start.kind === "resume"
        ? await this.watch.ready(stream)?.then(() => this.replayer.read(stream, start.from.id))
        : await this.freshStart(gate, stream);
    if (!read) throw new Error("subscribe: not watched");
    const report = await this.begin(gate, stream, start, read);
    // Its cursor went meanwhile (the stream was taken off the socket): nothing was reported, the join fails.
    if (!report) throw new TetherError(ErrorCode.Unavailable, "The stream was left while it was being joined.");
    return { ...report, offset: offsetOf(gate.cursors.get(stream)?.pos ?? positionOf(read)) };
  }

  /**
   * A resumed socket's read when this instance knows, with no store read, that nothing
   * came after its position: it heard the stream up to exactly there (`heardAt`); or a
   * live socket's cursor of the stream here is exactly there (anything after it arrives
   * live, as this socket's gate is in place); or the handshake's read of the head found
   * it there, and the stream is checked again once the subscription is confirmed (as
   * for a fresh start). Undefined: the store is read.
   */
  private knownAt(gate: Gate, stream: string, from: StreamPosition): StreamRead | undefined {
    const heard = this.watch.heardAt(stream, from);
    if (heard) return heard;
    const live = this.liveCursor(gate, stream);
    if (live) return samePosition(live, from) ? nothingAfter(from) : undefined;
    const head = gate.connecting?.heads?.get(stream);
    if (head === undefined || head.epoch !== from.epoch || head.last !== from.id) return undefined;
    this.checkOnceReady(stream);
    return nothingAfter(from);
  }

  /** Another live socket's position in the stream here (not being read), if any. */
  private liveCursor(gate: Gate, stream: string): StreamPosition | undefined {
    for (const other of this.watch.gatesOf(stream) ?? []) {
      const cursor = other.cursors.get(stream);
      // The cursor is itself a position (read at once, not kept).
      if (other !== gate && cursor && !cursor.held) return cursor;
    }
    return undefined;
  }

  /** A head read before this instance's subscription was confirmed may miss an event appended in between. */
  private checkOnceReady(stream: string): void {
    void this.watch.ready(stream)?.then((ok) => {
      if (ok) void this.repair.checkStream(stream);
    });
  }

  /** A fresh start, as a read with nothing to replay. */
  private async freshStart(gate: Gate, stream: string): Promise<StreamRead> {
    const head = await this.freshHead(gate, stream);
    return { last: head.last, epoch: head.epoch, maxDeleted: ZERO_ID, length: 0, entries: [] };
  }

  /**
   * Where a fresh socket starts: at a live socket's cursor of the same stream
   * here (exact: anything after it arrives live), else at the head the
   * handshake read or a read made now. A head read before this instance's
   * subscription was confirmed may miss an event appended in between: the
   * stream is checked again once the subscription is in place.
   */
  private async freshHead(gate: Gate, stream: string): Promise<StreamHead> {
    const live = this.liveCursor(gate, stream);
    if (live) return { last: live.id, epoch: live.epoch };
    const known = gate.connecting?.heads?.get(stream);
    if (known) {
      this.checkOnceReady(stream);
      return known;
    }
    await this.watch.ready(stream);
    return this.history.head(stream);
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
    const report = await this.settle(gate, stream, start, read, "always");
    this.repair.release(gate, stream);
    return report;
  }

  /**
   * A first read's replay (or where a fresh start stands) and its report, sent (`always`) or
   * returned to go in `welcome` (`returned`); live events stay held. Undefined when the stream
   * was taken off the socket meanwhile.
   */
  private async settle(
    gate: Gate,
    stream: string,
    start: StreamStart,
    read: StreamRead,
    report: "always" | "returned",
  ): Promise<RecoveryPayload | undefined> {
    const cursor = gate.cursors.get(stream);
    if (!cursor) return undefined;
    if (start.kind === "resume")
      return this.replayer.replay(gate, stream, start.from, read, { report, trusted: false });
    cursor.pos = positionOf(read);
    if (start.kind === "unusable") return this.replayer.reportLost(gate, stream, 0, "invalid");
    return { recovered: true, missed: 0, ...roomField(stream) };
  }
}

/** A first read that replays nothing and reports no loss: a fresh start, or a resume that missed nothing. */
function nothingToReplay(start: StreamStart, read: StreamRead): boolean {
  if (start.kind === "fresh") return true;
  return start.kind === "resume" && read.entries.length === 0 && unrecoverable(start.from, read) === undefined;
}

function samePosition(a: StreamPosition, b: StreamPosition): boolean {
  return a.id === b.id && a.epoch === b.epoch;
}

/** A read at `pos` with nothing after it. */
function nothingAfter(pos: StreamPosition): StreamRead {
  return { last: pos.id, epoch: pos.epoch, maxDeleted: ZERO_ID, length: 0, entries: [] };
}
