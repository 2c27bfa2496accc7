import {
  compareIds,
  isPublishableEventName,
  type RecoveryFailure,
  type RecoveryPayload,
  ServerEvent,
  type StreamPosition,
  ZERO_ID,
} from "@tether/shared";
import type { Logger } from "pino";
import type { Metrics } from "../observability/metrics.js";
import type { HistoryStore, StreamEntry, StreamRead } from "../store/types.js";
import { bufferedBytes, drained } from "./backpressure.js";
import type { Gate } from "./cursor.js";
import { offsetOf, positionOf, unrecoverable } from "./recovery.js";
import { roomOf } from "./streams.js";

/** Entries read from the store per page of a replay (each page is also at most the replay buffer in bytes). */
const REPLAY_PAGE = 500;

/**
 * How a replay reports: on connect, always (`recovery`), or returned for `welcome` to carry when
 * nothing was missed; on a live repair, only when recovery failed.
 */
export interface ReplayMode {
  report: "always" | "returned" | "failure";
  /** The position is one this instance delivered (not client input): evidence enough of a rollback. */
  trusted: boolean;
}

export interface ReplayOptions {
  /** Replayed bytes one socket may have waiting to be sent: past them its replay waits for it to drain. */
  replayBufferBytes: number;
  metrics: Metrics;
  logger: Logger;
}

/**
 * Reads streams from the store and replays them to sockets: the missed events
 * of a connect, and the re-reads of a live repair (a gap, an epoch change, a
 * subscriber reconnect). Reads at one position are shared by every socket there.
 */
export class Replayer {
  private readonly reads = new Map<string, Promise<StreamRead>>();

  constructor(
    private readonly history: HistoryStore,
    private readonly options: ReplayOptions,
  ) {}

  /**
   * Replays entries after `from`, page by page, each page checked again (a
   * trim between pages must not pass silently); then reports. When the stream
   * cannot be recovered the socket is told, and its cursor moves to the head.
   * Undefined when the stream is no longer the socket's (nothing to report).
   */
  async replay(
    gate: Gate,
    stream: string,
    from: StreamPosition,
    first: StreamRead,
    mode: ReplayMode,
  ): Promise<RecoveryPayload | undefined> {
    const cursor = gate.cursors.get(stream);
    if (!cursor) return undefined;
    let read = first;
    let pos = from;
    let replayed = 0;
    let sinceCheck = 0;
    const budget = this.options.replayBufferBytes;
    let reported: RecoveryPayload | undefined;
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
        reported ??= this.reportLost(gate, stream, lost.missed, lost.reason);
        if (target.id !== ZERO_ID) return reported;
        pos = target;
        read = await this.read(stream, ZERO_ID);
        continue;
      }
      let full = false;
      for (const entry of read.entries) {
        this.emit(gate.socket, stream, entry, read.epoch);
        pos = { id: entry.id, epoch: read.epoch };
        replayed += 1;
        sinceCheck += entry.data.length;
        if (sinceCheck >= budget / 4) {
          sinceCheck = 0;
          full ||= bufferedBytes(gate.socket) > budget;
        }
      }
      cursor.pos = pos;
      if (read.entries.length === 0 || read.entries.at(-1)?.id === read.last || !gate.socket.connected) break;
      // A client that does not read must not make this instance hold its backlog: pages are at most the
      // budget in bytes, and the next one is read only once the socket has sent most of what it holds.
      if (full) {
        this.options.metrics.replayWaits.inc();
        if (!(await drained(gate.socket, budget / 2))) break;
      }
      read = await this.read(stream, pos.id);
    }
    this.options.metrics.replayed.inc(replayed);
    if (reported) return reported;
    const report: RecoveryPayload = { recovered: true, missed: replayed, ...roomField(stream) };
    if (mode.report !== "failure") {
      const { metrics } = this.options;
      metrics.recovery("none");
      metrics.replaySize.observe({ stream: roomOf(stream) === undefined ? "user" : "room" }, replayed);
      if (mode.report === "always") gate.socket.emit(ServerEvent.Recovery, report);
    }
    return report;
  }

  reportLost(gate: Gate, stream: string, missed: number, reason: RecoveryFailure): RecoveryPayload {
    const cursor = gate.cursors.get(stream);
    this.options.metrics.recovery(reason);
    const report: RecoveryPayload = {
      recovered: false,
      missed,
      ...roomField(stream),
      ...(cursor ? { offset: offsetOf(cursor.pos) } : {}),
      reason,
    };
    gate.socket.emit(ServerEvent.Recovery, report);
    return report;
  }

  /** A page of a stream after an id; concurrent identical reads (many sockets at one position) share one. */
  read(stream: string, after: string): Promise<StreamRead> {
    const key = `${stream}\n${after}`;
    let read = this.reads.get(key);
    if (!read) {
      read = this.history
        .readAfter(stream, after, REPLAY_PAGE, this.options.replayBufferBytes)
        .finally(() => this.reads.delete(key));
      this.reads.set(key, read);
    }
    return read;
  }

  /**
   * Emits one stored event. One that must not reach a client (a reserved name
   * written before the rule, a payload that is not JSON) is logged and skipped,
   * never thrown.
   */
  emit(target: { emit: (...args: never[]) => unknown }, stream: string, entry: StreamEntry, epoch: string): void {
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

export const roomField = (stream: string) => {
  const room = roomOf(stream);
  return room === undefined ? {} : { room };
};

/**
 * The payload a client receives: the published data plus its offset (and room). Set on the
 * object just parsed (it is this call's own): a copy by spread plus new properties is V8's slow path.
 */
function payloadOf(stream: string, entry: StreamEntry, epoch: string): Record<string, unknown> {
  const payload = JSON.parse(entry.data) as Record<string, unknown>;
  payload.offset = offsetOf({ id: entry.id, epoch });
  const room = roomOf(stream);
  if (room !== undefined) payload.room = room;
  return payload;
}
