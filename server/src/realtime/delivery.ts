import {
  compareIds,
  isPublishableEventName,
  ServerEvent,
  type StreamPosition,
  type WelcomePayload,
  ZERO_ID,
} from "@tether/shared";
import type { Logger } from "pino";
import type { Metrics } from "../ops/metrics.js";
import type { AppendedEvent, HistoryStore, StreamEntry, StreamRead } from "../store/types.js";
import { type Continuity, type Cursor, continuity } from "./cursor.js";
import { offsetOf, positionOf, type StreamStart, startFrom, unrecoverable } from "./recovery.js";
import { onLeave } from "./socket-lifetime.js";
import { roomOf } from "./streams.js";
import type { TetherServer, TetherSocket } from "./types.js";

/** Entries read from the store per page of a replay: bounds what one replay holds in memory. */
const REPLAY_PAGE = 500;
/** Live events held for one socket's stream while it is read; past this it is disconnected and retries. */
const MAX_HELD = 10_000;
/** Backoff between attempts to re-read a stream while the store is unreachable. */
const REPAIR_RETRY_MS = { first: 100, max: 2_000 } as const;

type RepairCause = "gap" | "epoch" | "resync" | "check";

interface Gate {
  socket: TetherSocket;
  cursors: Map<string, Cursor>;
  /** Until the first read: where each stream starts, from what the client sent. */
  starts: Map<string, StreamStart>;
}

/** How a replay reports: on connect, always (`recovery`); on a live repair, only when recovery failed. */
interface ReplayMode {
  report: "always" | "failure";
  /** The position is one this instance delivered (not client input): evidence enough of a rollback. */
  trusted: boolean;
}

export interface DeliveryOptions {
  instanceId: string;
  /** How often each stream with sockets here is compared with the store's head (catches a lost last event). */
  checkIntervalMs: number;
  metrics: Metrics;
  logger: Logger;
}

/**
 * Delivers published events to this instance's sockets, exactly once and in
 * stream order per stream, or says `recovery {recovered:false}`.
 *
 * Every fan-out message carries the id before it (`prev`) and the stream's
 * epoch. A socket's cursor takes a live event only when it is the next one;
 * a gap (a lost message), an epoch change, a resubscribe of the fan-out
 * connection or a periodic head check that finds the cursor behind makes it
 * re-read the stream from the cursor, holding live events meanwhile. On
 * connect the same read replays what the client missed.
 */
export class Delivery {
  private readonly gates = new Map<string, Gate>();
  /** Reads in flight, shared by every socket at the same position of a stream. */
  private readonly reads = new Map<string, Promise<StreamRead>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly io: TetherServer,
    private readonly history: HistoryStore,
    private readonly options: DeliveryOptions,
  ) {}

  /** Starts receiving appended events (from every instance and publisher), and the periodic check. */
  async start(): Promise<void> {
    this.timer ??= setInterval(() => void this.check(), this.options.checkIntervalMs).unref();
    await this.history.subscribe({ onEvent: (event) => this.onEvent(event), onResync: () => this.resyncAll() });
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * In the handshake, before the socket joins its rooms: holds its live events
   * from now on, and notes where each stream starts. `requested` maps stream →
   * the offset the client sent. No store read: the reads come after the join,
   * so nothing published in between can slip past both the read and the room.
   * The gate goes with the socket, whichever way it leaves (mid-handshake too).
   */
  prepare(socket: TetherSocket, requested: Map<string, unknown>): void {
    const starts = new Map([...requested].map(([stream, offset]) => [stream, startFrom(offset)]));
    const cursors = new Map<string, Cursor>(
      [...requested.keys()].map((stream) => [stream, { pos: { id: "0-0", epoch: "" }, held: [] }]),
    );
    this.gates.set(socket.id, { socket, cursors, starts });
    onLeave(socket, () => this.gates.delete(socket.id));
  }

  /** After connect: `welcome`, then each stream's missed events and `recovery`, then live. */
  async resume(socket: TetherSocket): Promise<void> {
    const gate = this.gates.get(socket.id);
    if (!gate) return;
    try {
      const firsts = await Promise.all(
        [...gate.starts].map(async ([stream, start]) =>
          start.kind === "resume"
            ? { stream, start, read: await this.read(stream, start.from.id) }
            : {
                stream,
                start,
                read: { ...(await this.history.head(stream)), maxDeleted: "0-0", length: 0, entries: [] },
              },
        ),
      );
      const welcome: WelcomePayload = { instance: this.options.instanceId, offset: "0-0" };
      const rooms: Record<string, string> = {};
      for (const { stream, read } of firsts) {
        const room = roomOf(stream);
        if (room === undefined) welcome.offset = offsetOf(positionOf(read));
        else rooms[room] = offsetOf(positionOf(read));
      }
      socket.emit(ServerEvent.Welcome, Object.keys(rooms).length > 0 ? { ...welcome, rooms } : welcome);

      for (const { stream, start, read } of firsts) {
        const cursor = gate.cursors.get(stream);
        if (!cursor) continue;
        if (start.kind === "resume") {
          await this.replay(gate, stream, start.from, read, { report: "always", trusted: false });
        } else {
          cursor.pos = positionOf(read);
          if (start.kind === "unusable") this.reportLost(gate, stream, 0);
        }
        this.release(gate, stream);
      }
    } catch (err) {
      // The store failed mid-replay: the client reconnects with the same offset and tries again.
      this.options.logger.warn({ err: (err as Error).message, socket: socket.id }, "replay failed; disconnecting");
      socket.disconnect(true);
    }
  }

  /** One appended event, to every local socket of its stream that is at the event before it. */
  private onEvent(event: AppendedEvent): void {
    try {
      const members = this.io.of("/").adapter.rooms.get(event.stream);
      if (!members || members.size === 0) return;
      const ready: string[] = [];
      for (const id of members) {
        const gate = this.gates.get(id);
        if (gate && this.offer(gate, event) === "next") ready.push(id);
      }
      // One encode for every socket that takes it.
      if (ready.length > 0) this.emit(this.io.local.to(ready), event.stream, event, event.epoch);
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
      if (this.offer(gate, event) === "next") this.emit(gate.socket, stream, event, event.epoch);
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
          const read = await this.read(stream, cursor.pos.id);
          await this.replay(gate, stream, cursor.pos, read, { report: "failure", trusted: true });
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

  /** The subscriber reconnected: messages may have been lost, so every cursor re-reads. */
  private resyncAll(): void {
    for (const gate of this.gates.values()) {
      for (const [stream, cursor] of gate.cursors) if (!cursor.held) this.repair(gate, stream, "resync");
    }
  }

  /**
   * Compares each stream's head with the cursors that took no event since the
   * last check: a cursor behind lost the stream's last message (nothing after it
   * would reveal the gap).
   */
  private async check(): Promise<void> {
    const byStream = new Map<string, [Gate, Cursor][]>();
    for (const gate of this.gates.values()) {
      for (const [stream, cursor] of gate.cursors) {
        if (cursor.held) continue;
        const idle = cursor.checked === cursor.pos;
        cursor.checked = cursor.pos;
        if (!idle) continue;
        byStream.set(stream, [...(byStream.get(stream) ?? []), [gate, cursor]]);
      }
    }
    for (const [stream, cursors] of byStream) {
      const head = await this.history.head(stream).catch(() => undefined);
      if (!head) return; // The store is unreachable: its reconnect resyncs.
      for (const [gate, cursor] of cursors) {
        const behind = head.epoch !== cursor.pos.epoch || compareIds(head.last, cursor.pos.id) !== 0;
        if (behind && !cursor.held && cursor.checked === cursor.pos) this.repair(gate, stream, "check");
      }
    }
  }

  /**
   * Replays entries after `from`, page by page, each page checked again (a
   * trim between pages must not pass silently); then reports. When the stream
   * cannot be recovered the socket is told, and its cursor moves to the head.
   */
  private async replay(
    gate: Gate,
    stream: string,
    from: StreamPosition,
    first: StreamRead,
    mode: ReplayMode,
  ): Promise<void> {
    const cursor = gate.cursors.get(stream);
    if (!cursor) return;
    let read = first;
    let pos = from;
    let replayed = 0;
    let reported = false;
    for (;;) {
      const lost = unrecoverable(pos, read);
      if (lost) {
        let target = positionOf(read);
        if (pos.epoch !== read.epoch && read.maxDeleted === ZERO_ID && read.epoch !== "") {
          // A new epoch that has lost nothing yet: what was lost is gone, but all of the new one can follow.
          target = { id: ZERO_ID, epoch: read.epoch };
        } else if (mode.trusted && pos.epoch === read.epoch && compareIds(pos.id, read.last) > 0) {
          // This instance delivered an id the store no longer has, in the same epoch: the store rolled back.
          target = positionOf(await this.history.newEpochIfBehind(stream, pos.epoch, pos.id));
        }
        cursor.pos = target;
        if (!reported) this.reportLost(gate, stream, lost.missed);
        reported = true;
        if (target.id !== ZERO_ID) return;
        pos = target;
        read = await this.read(stream, ZERO_ID);
        continue;
      }
      for (const entry of read.entries) {
        this.emit(gate.socket, stream, entry, read.epoch);
        pos = { id: entry.id, epoch: read.epoch };
      }
      cursor.pos = pos;
      replayed += read.entries.length;
      if (read.entries.length < REPLAY_PAGE || !gate.socket.connected) break;
      read = await this.read(stream, pos.id);
    }
    this.options.metrics.replayed.inc(replayed);
    if (mode.report === "always" && !reported) {
      this.options.metrics.recoveries.inc({ recovered: "true" });
      gate.socket.emit(ServerEvent.Recovery, { recovered: true, missed: replayed, ...roomField(stream) });
    }
  }

  private reportLost(gate: Gate, stream: string, missed: number): void {
    const cursor = gate.cursors.get(stream);
    this.options.metrics.recoveries.inc({ recovered: "false" });
    gate.socket.emit(ServerEvent.Recovery, {
      recovered: false,
      missed,
      ...roomField(stream),
      ...(cursor ? { offset: offsetOf(cursor.pos) } : {}),
    });
  }

  /** A page of a stream after an id; concurrent identical reads (many sockets at one position) share one. */
  private read(stream: string, after: string): Promise<StreamRead> {
    const key = `${stream}\n${after}`;
    let read = this.reads.get(key);
    if (!read) {
      read = this.history.readAfter(stream, after, REPLAY_PAGE).finally(() => this.reads.delete(key));
      this.reads.set(key, read);
    }
    return read;
  }

  /**
   * Emits one stored event. One that must not reach a client (a reserved name
   * written before the rule, a payload that is not JSON) is logged and skipped,
   * never thrown.
   */
  private emit(
    target: { emit: (...args: never[]) => unknown },
    stream: string,
    entry: StreamEntry,
    epoch: string,
  ): void {
    try {
      if (!isPublishableEventName(entry.event)) throw new Error("reserved event name");
      const payload = payloadOf(stream, entry, epoch);
      (target.emit as (event: string, payload: unknown) => unknown).call(target, entry.event, payload);
    } catch (err) {
      this.options.logger.error(
        { err: (err as Error).message, stream, event: entry.event.slice(0, 64) },
        "event not deliverable; skipped",
      );
    }
  }
}

const roomField = (stream: string) => {
  const room = roomOf(stream);
  return room === undefined ? {} : { room };
};

/** The payload a client receives: the published data plus its offset (and room). */
function payloadOf(stream: string, entry: StreamEntry, epoch: string): Record<string, unknown> {
  const data = JSON.parse(entry.data) as Record<string, unknown>;
  return { ...data, offset: offsetOf({ id: entry.id, epoch }), ...roomField(stream) };
}
