import { ServerEvent, type WelcomePayload } from "@tether/shared";
import type { Logger } from "pino";
import type { Metrics } from "../ops/metrics.js";
import { compareIds } from "../store/stream-id.js";
import type { AppendedEvent, HistoryStore, StreamEntry } from "../store/types.js";
import { planFromHead, planRecovery, type StreamStart, startFrom } from "./recovery.js";
import { roomOf } from "./streams.js";
import type { TetherServer, TetherSocket } from "./types.js";

/** Entries read from the store per page of a replay: bounds what one replay holds in memory. */
const REPLAY_PAGE = 500;
/** Live events held for one socket while it replays; past this it is disconnected and retries. */
const MAX_QUEUED = 10_000;

interface Gate {
  starts: Map<string, StreamStart>;
  /** Per stream: live events at or before this id were already delivered (or predate the socket). */
  thresholds: Map<string, string>;
  /** Live events held while the socket replays; undefined once it is live. */
  queue: AppendedEvent[] | undefined;
}

/**
 * Delivers published events to this instance's sockets, exactly once and in
 * stream order across reconnects: on connect a socket first gets what it
 * missed (from the store), while live events for it are held; then the held
 * events it has not seen, then live ones.
 */
export class Delivery {
  private readonly gates = new Map<string, Gate>();

  constructor(
    private readonly io: TetherServer,
    private readonly history: HistoryStore,
    private readonly instanceId: string,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  /** Starts receiving appended events (from every instance and publisher). */
  start(): Promise<void> {
    return this.history.subscribe((event) => this.deliver(event));
  }

  /**
   * In the handshake, before the socket joins its rooms: holds its live events
   * from now on, and notes where each stream starts. `requested` maps stream →
   * the offset the client sent. No store read: the reads come after the join,
   * so nothing published in between can slip past both the read and the room.
   */
  prepare(socket: TetherSocket, requested: Map<string, unknown>): void {
    const starts = new Map<string, StreamStart>([...requested].map(([stream, offset]) => [stream, startFrom(offset)]));
    this.gates.set(socket.id, { starts, thresholds: new Map(), queue: [] });
    socket.once("disconnect", () => this.gates.delete(socket.id));
  }

  /** After connect: `welcome`, then each stream's missed events and `recovery`, then live. */
  async resume(socket: TetherSocket): Promise<void> {
    const gate = this.gates.get(socket.id);
    if (!gate) return;
    try {
      const plans = await Promise.all(
        [...gate.starts].map(async ([stream, start]) => {
          // A first connect needs only the stream's newest id; a resume reads what it missed.
          if (start.kind !== "resume")
            return { stream, read: undefined, plan: planFromHead(start, await this.history.lastId(stream)) };
          const read = await this.history.readAfter(stream, start.offset, REPLAY_PAGE);
          return { stream, read, plan: planRecovery(start, read) };
        }),
      );
      const welcome: WelcomePayload = { instance: this.instanceId, offset: "0-0" };
      const rooms: Record<string, string> = {};
      for (const { stream, plan } of plans) {
        const room = roomOf(stream);
        if (room === undefined) welcome.offset = plan.welcomeOffset;
        else rooms[room] = plan.welcomeOffset;
      }
      socket.emit(ServerEvent.Welcome, Object.keys(rooms).length > 0 ? { ...welcome, rooms } : welcome);

      for (const { stream, read, plan } of plans) {
        let threshold = plan.threshold;
        let replayed = 0;
        if (plan.replayAfter !== undefined && read) {
          let page = read.entries;
          for (;;) {
            for (const entry of page) this.emit(socket, stream, entry);
            replayed += page.length;
            threshold = page.at(-1)?.offset ?? threshold;
            if (page.length < REPLAY_PAGE || !socket.connected) break;
            page = (await this.history.readAfter(stream, threshold, REPLAY_PAGE)).entries;
          }
        }
        gate.thresholds.set(stream, threshold);
        this.metrics.replayed.inc(replayed);
        if (plan.report) {
          this.metrics.recoveries.inc({ recovered: String(plan.report.recovered) });
          const room = roomOf(stream);
          socket.emit(ServerEvent.Recovery, {
            recovered: plan.report.recovered,
            missed: plan.report.missed ?? replayed,
            ...(room === undefined ? {} : { room }),
          });
        }
      }
      this.open(socket, gate);
    } catch (err) {
      // The store failed mid-replay: the client reconnects with the same offset and tries again.
      this.logger.warn({ err: (err as Error).message, socket: socket.id }, "replay failed; disconnecting");
      socket.disconnect(true);
    }
  }

  /** Sends the held events the socket has not seen, then lets live events through. */
  private open(socket: TetherSocket, gate: Gate): void {
    const held = gate.queue ?? [];
    gate.queue = undefined;
    for (const event of held) if (isNew(gate, event)) this.emit(socket, event.stream, event);
  }

  private emit(socket: TetherSocket, stream: string, entry: StreamEntry): void {
    const emit = socket.emit as (event: string, payload: unknown) => boolean;
    emit.call(socket, entry.event, payloadOf(stream, entry));
  }

  /** One appended event, to every local socket of its stream's room that should have it. */
  private deliver(event: AppendedEvent): void {
    const members = this.io.of("/").adapter.rooms.get(event.stream);
    if (!members || members.size === 0) return;
    const ready: string[] = [];
    for (const id of members) {
      const gate = this.gates.get(id);
      if (!gate) continue;
      if (gate.queue) {
        gate.queue.push(event);
        if (gate.queue.length > MAX_QUEUED) this.io.of("/").sockets.get(id)?.disconnect(true);
        continue;
      }
      if (isNew(gate, event)) ready.push(id);
    }
    if (ready.length === 0) return;
    // One encode for every socket that is live on this stream.
    const sockets = this.io.local.to(ready);
    (sockets.emit as (event: string, payload: unknown) => boolean).call(
      sockets,
      event.event,
      payloadOf(event.stream, event),
    );
  }
}

/** True (and the threshold advances) when the socket has not had this event yet. */
function isNew(gate: Gate, event: AppendedEvent): boolean {
  const threshold = gate.thresholds.get(event.stream);
  if (threshold !== undefined && compareIds(event.offset, threshold) <= 0) return false;
  gate.thresholds.set(event.stream, event.offset);
  return true;
}

/** The payload a client receives: the published data plus its offset (and room). */
function payloadOf(stream: string, entry: StreamEntry): Record<string, unknown> {
  const room = roomOf(stream);
  const data = JSON.parse(entry.data) as Record<string, unknown>;
  return room === undefined ? { ...data, offset: entry.offset } : { ...data, offset: entry.offset, room };
}
