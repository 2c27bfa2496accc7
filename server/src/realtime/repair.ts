import { compareIds } from "@tether/shared";
import type { Logger } from "pino";
import type { Metrics } from "../observability/metrics.js";
import type { AppendedEvent, HistoryStore } from "../store/types.js";
import { type Continuity, continuity, type Gate } from "./cursor.js";
import type { Replayer } from "./replay.js";
import type { StreamWatch } from "./stream-watch.js";

/** Live events held for one socket's stream while it is read; past this it is disconnected and retries. */
const MAX_HELD = 10_000;
/** Backoff between attempts to re-read a stream while the store is unreachable. */
const REPAIR_RETRY_MS = { first: 100, max: 2_000 } as const;

type RepairCause = "gap" | "epoch" | "resync" | "subscribe";

export interface StreamRepairOptions {
  /** Whether the gate is still its socket's here (a repair stops once the socket has left). */
  isCurrent: (gate: Gate) => boolean;
  metrics: Metrics;
  logger: Logger;
}

/**
 * Keeps each socket's cursors in stream order. A cursor takes a live event
 * only when it is the next one; a gap (a lost message), an epoch change, or a
 * reconnect of the fan-out connection (after a drop, or forced when its
 * delivery probe did not return) makes it re-read the stream from the cursor,
 * holding live events meanwhile, then let them through in order.
 */
export class StreamRepair {
  constructor(
    private readonly history: HistoryStore,
    private readonly watch: StreamWatch,
    private readonly replayer: Replayer,
    private readonly options: StreamRepairOptions,
  ) {}

  /** Offers a live event to a socket's cursor: holds it, drops it, or starts a repair. */
  offer(gate: Gate, event: AppendedEvent): Continuity | "held" {
    const cursor = gate.cursors.get(event.stream);
    if (!cursor) return "seen";
    if (cursor.held) {
      cursor.held.push(event);
      if (cursor.held.length > MAX_HELD) gate.socket.disconnect(true);
      return "held";
    }
    const verdict = continuity(cursor, event);
    if (verdict === "next") cursor.pos = event;
    if (verdict === "gap") this.repair(gate, event.stream, event.epoch === cursor.epoch ? "gap" : "epoch", event);
    return verdict;
  }

  /** Lets a stream's held events through (after its read), each checked like a live one. */
  release(gate: Gate, stream: string): void {
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
   * A subscriber connection reconnected (after a drop, or forced by the probe):
   * messages may have been lost, so every cursor of every watched stream
   * re-reads; one being read now is re-read once released (its read may have
   * started before the loss).
   */
  resyncAll(memberships: Iterable<[string, Gate]>): void {
    for (const [stream, gate] of memberships) {
      const cursor = gate.cursors.get(stream);
      if (cursor?.held) cursor.recheck = "resync";
      else if (cursor) this.repair(gate, stream, "resync");
    }
  }

  /**
   * Compares one stream's head with every cursor of it here (the subscription
   * was just confirmed): a cursor behind re-reads; one still being read is
   * re-read once it is released.
   */
  async checkStream(stream: string): Promise<void> {
    const head = await this.history.head(stream).catch(() => undefined);
    for (const gate of this.watch.gatesOf(stream) ?? []) {
      const cursor = gate.cursors.get(stream);
      if (!cursor) continue;
      if (cursor.held) cursor.recheck ??= "subscribe";
      else if (!head || head.epoch !== cursor.epoch || compareIds(head.last, cursor.id) !== 0)
        this.repair(gate, stream, "subscribe");
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
      for (let attempt = 0; this.options.isCurrent(gate); attempt++) {
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
}
