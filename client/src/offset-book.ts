import {
  type Offset,
  type RecoveryPayload,
  type RoomRevokedPayload,
  ServerEvent,
  type WelcomePayload,
} from "@tether/shared";
import { isAfter, offsetOf, roomOf } from "./offset.js";

/** Key of the user's own stream (rooms are keyed by name). */
export const USER_STREAM = "";

/** Where a book keeps its offsets across page reloads (a tab's `sessionStorage`). */
export interface OffsetStore {
  load(): { offsets: Record<string, Offset>; savedAt: number } | undefined;
  save(offsets: Record<string, Offset>): void;
  clear(): void;
}

/**
 * The last offset delivered per stream, and the duplicate check that keeps every
 * event with an offset delivered once. One book per consumer of events: the
 * connection's own, and each tab's when tabs share a connection.
 */
export class OffsetBook {
  private readonly offsets = new Map<string, Offset>();
  /** Per connection: `welcome`'s offsets (where a stream stands that cannot be replayed). */
  private welcomeOffsets = new Map<string, Offset>();
  /** When the stored offsets were written last (epoch ms), if they came from a store. */
  readonly restoredAt: number | undefined;

  constructor(private readonly store?: OffsetStore) {
    const saved = store?.load();
    if (saved) {
      for (const [stream, offset] of Object.entries(saved.offsets)) this.offsets.set(stream, offset);
      this.restoredAt = saved.savedAt;
    }
  }

  get(stream: string): Offset | undefined {
    return this.offsets.get(stream);
  }

  /** Every stream's offset, the user's under {@link USER_STREAM}. */
  all(): Record<string, Offset> {
    return Object.fromEntries(this.offsets);
  }

  /** The rooms' offsets, without the user stream's. */
  rooms(): Record<string, Offset> {
    return Object.fromEntries([...this.offsets].filter(([stream]) => stream !== USER_STREAM));
  }

  /** Moves `stream` forward to `offset` (never back). */
  advance(stream: string, offset: Offset): void {
    if (!isAfter(offset, this.offsets.get(stream))) return;
    this.offsets.set(stream, offset);
    this.save();
  }

  /** Moves each stream back to the given offset where it is older (or unknown): those events will come again. */
  rewind(offsets: Record<string, Offset>): boolean {
    let moved = false;
    for (const [stream, offset] of Object.entries(offsets)) {
      const current = this.offsets.get(stream);
      if (current !== undefined && !isAfter(current, offset)) continue;
      this.offsets.set(stream, offset);
      moved = true;
    }
    if (moved) this.save();
    return moved;
  }

  forget(stream: string): void {
    if (this.offsets.delete(stream)) this.save();
  }

  clear(): void {
    this.offsets.clear();
    this.store?.clear();
  }

  /**
   * What an incoming server event says about the streams: `welcome` where each stands,
   * a failed `recovery` where one resumes, `room:revoked` a room to forget, and any
   * other event its own offset. True when the event was delivered already (a replay
   * or a repeat), so listeners must not see it again.
   */
  track(event: string, payload: unknown): boolean {
    let duplicate = false;
    if (event === ServerEvent.Welcome) this.onWelcome(payload as WelcomePayload);
    else duplicate = this.isDuplicate(payload);
    if (event === ServerEvent.Recovery) this.onRecovery(payload as RecoveryPayload);
    if (event === ServerEvent.RoomRevoked) this.forget((payload as RoomRevokedPayload).room);
    return duplicate;
  }

  /** Records an event's offset; true when it is not after the stream's last one. */
  private isDuplicate(payload: unknown): boolean {
    const offset = offsetOf(payload);
    if (offset === undefined) return false;
    const stream = roomOf(payload) ?? USER_STREAM;
    if (!isAfter(offset, this.offsets.get(stream))) return true;
    this.offsets.set(stream, offset);
    this.save();
    return false;
  }

  /**
   * `welcome` carries each stream's current offset. It is adopted only where there
   * is none (a first connect): on a reconnect the replay is still to come.
   */
  private onWelcome(welcome: WelcomePayload): void {
    this.welcomeOffsets = new Map();
    const streams: [string, unknown][] = [[USER_STREAM, welcome.offset], ...Object.entries(welcome.rooms ?? {})];
    let adopted = false;
    for (const [stream, offset] of streams) {
      if (typeof offset !== "string") continue;
      this.welcomeOffsets.set(stream, offset);
      if (this.offsets.has(stream)) continue;
      this.offsets.set(stream, offset);
      adopted = true;
    }
    if (adopted) this.save();
  }

  /** A stream that could not be recovered resumes from now, or the next reconnect fails the same way. */
  private onRecovery(payload: RecoveryPayload): void {
    if (payload.recovered) return;
    const stream = payload.room ?? USER_STREAM;
    const now = payload.offset ?? this.welcomeOffsets.get(stream);
    if (now === undefined) return;
    this.offsets.set(stream, now);
    this.save();
  }

  private save(): void {
    this.store?.save(this.all());
  }
}

/**
 * A tab's `sessionStorage` under `key`: it survives a reload of that tab and no
 * other. Undefined where there is none (Node, a worker) or it is unusable
 * (storage disabled, quota): offsets then live in memory only.
 *
 * Nothing is written between `pagehide` and the next `pageshow`: events that
 * arrive while the page is going away reach listeners nobody sees, so the stored
 * offset stays at the last event delivered before, and they are replayed after the reload.
 */
export function sessionOffsetStore(key: string): OffsetStore | undefined {
  let storage: Storage;
  try {
    storage = globalThis.sessionStorage;
    if (storage === undefined) return undefined;
    storage.getItem(key);
  } catch {
    return undefined;
  }
  let leaving = false;
  addEventListener("pagehide", () => {
    leaving = true;
  });
  addEventListener("pageshow", () => {
    leaving = false;
  });
  return {
    load() {
      try {
        const parsed: unknown = JSON.parse(storage.getItem(key) ?? "null");
        if (typeof parsed !== "object" || parsed === null) return undefined;
        const { offsets, savedAt } = parsed as { offsets?: unknown; savedAt?: unknown };
        if (typeof offsets !== "object" || offsets === null || typeof savedAt !== "number") return undefined;
        const valid = Object.entries(offsets).filter(
          (entry): entry is [string, string] => typeof entry[1] === "string",
        );
        return { offsets: Object.fromEntries(valid), savedAt };
      } catch {
        return undefined;
      }
    },
    save(offsets) {
      if (leaving) return;
      try {
        storage.setItem(key, JSON.stringify({ offsets, savedAt: Date.now() }));
      } catch {
        // Quota or disabled storage: the offsets still live in memory.
      }
    },
    clear() {
      try {
        storage.removeItem(key);
      } catch {
        // As above.
      }
    },
  };
}
