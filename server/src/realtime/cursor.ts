import { compareIds, type RecoveryPayload, type StreamPosition, ZERO_ID } from "@tether/shared";
import type { AppendedEvent, StreamHead } from "../store/types.js";
import type { StreamStart } from "./recovery.js";
import type { TetherSocket } from "./types.js";

/**
 * One socket's place in one stream: the last event it was given (or where it
 * started). While `held` is set the stream is being read for it, and live
 * events wait there, in order. The position is kept in the cursor's own fields
 * (one object per socket and stream, not two): `pos` reads and sets both, and the
 * cursor itself is a `StreamPosition` where one is only read at once.
 */
export class Cursor implements StreamPosition {
  id: string;
  epoch: string;
  /**
   * Read again once released: its stream's subscription was confirmed, or its
   * subscriber reconnected, while it was being read.
   */
  recheck: "subscribe" | "resync" | undefined = undefined;

  constructor(
    pos: StreamPosition,
    public held: AppendedEvent[] | undefined,
  ) {
    this.id = pos.id;
    this.epoch = pos.epoch;
  }

  /** Where it is, as a position of its own (kept by whoever reads it). */
  get pos(): StreamPosition {
    return { id: this.id, epoch: this.epoch };
  }

  set pos(pos: StreamPosition) {
    this.id = pos.id;
    this.epoch = pos.epoch;
  }
}

/** Where each stream of a connecting socket starts, as the offset it is handed (stream → offset). */
export type StartOffsets = Map<string, string>;

/**
 * A socket's cursors by stream. Most sockets have one stream (their user's): it is kept
 * inline, and a Map is made only for a second one, so an idle socket does not carry a
 * hash table (≈ 0.3 KiB). Iterating while cursors are added or deleted is safe: the inline
 * slot is never refilled from the Map (a deleted inline stream just empties it).
 */
export class Cursors {
  private stream: string | undefined;
  private cursor: Cursor | undefined;
  private more: Map<string, Cursor> | undefined;

  constructor(entries: Iterable<readonly [string, Cursor]> = []) {
    for (const [stream, cursor] of entries) this.set(stream, cursor);
  }

  get(stream: string): Cursor | undefined {
    return stream === this.stream ? this.cursor : this.more?.get(stream);
  }

  set(stream: string, cursor: Cursor): this {
    if (stream === this.stream) this.cursor = cursor;
    else if (this.more?.has(stream)) this.more.set(stream, cursor);
    else if (this.stream === undefined) {
      this.stream = stream;
      this.cursor = cursor;
    } else {
      this.more ??= new Map();
      this.more.set(stream, cursor);
    }
    return this;
  }

  /** True when the stream had a cursor. */
  delete(stream: string): boolean {
    if (stream !== this.stream) return this.more?.delete(stream) ?? false;
    this.stream = undefined;
    this.cursor = undefined;
    return true;
  }

  *keys(): IterableIterator<string> {
    for (const [stream] of this) yield stream;
  }

  *[Symbol.iterator](): IterableIterator<[string, Cursor]> {
    if (this.stream !== undefined && this.cursor !== undefined) yield [this.stream, this.cursor];
    if (this.more) yield* this.more;
  }
}

/**
 * What delivery keeps for one socket: its cursor in each of its streams. The gate holds
 * them itself (one object per socket, not two); `cursors` is the gate.
 */
export class Gate extends Cursors {
  /** What the connect needs until its first reads; dropped then (a connected socket keeps its cursors only). */
  connecting: Connecting | undefined;

  constructor(
    readonly socket: TetherSocket,
    streams: Iterable<string>,
    connecting?: Connecting,
  ) {
    super([...streams].map((stream): [string, Cursor] => [stream, new Cursor({ id: ZERO_ID, epoch: "" }, [])]));
    this.connecting = connecting;
  }

  get cursors(): Cursors {
    return this;
  }
}

export interface Connecting {
  /** Where each stream starts, from what the client sent. */
  starts: Map<string, StreamStart>;
  /** Heads the handshake already read (the user stream's, with the token): no second read. */
  heads?: Map<string, StreamHead>;
  /**
   * Told where every stream starts, before anything is replayed (the socket's `welcome` goes out
   * here), with the resumed streams' recoveries when they go in `welcome` (else none).
   */
  onStart: (offsets: StartOffsets, recoveries: RecoveryPayload[]) => void;
  /** The client reads recoveries inside `welcome` (`auth.recoveryInWelcome`): used when nothing is replayed. */
  recoveryInWelcome: boolean;
}

/** What a live event is to a cursor: the next one, one it has, or proof it missed something. */
export type Continuity = "next" | "seen" | "gap";

/**
 * An event follows a cursor when it is in the cursor's epoch (or the cursor
 * has none yet: the stream did not exist) and its `prev` is the cursor's id.
 * Anything else newer means a fan-out message was lost or the epoch changed.
 */
export function continuity(pos: StreamPosition, event: AppendedEvent): Continuity {
  const sameEpoch = pos.epoch === event.epoch || pos.epoch === "";
  if (sameEpoch && event.prev === pos.id) return "next";
  if (pos.epoch === event.epoch && compareIds(event.id, pos.id) <= 0) return "seen";
  return "gap";
}
