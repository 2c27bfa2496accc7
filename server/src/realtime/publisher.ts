import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type AppEventData,
  type AppServerEventName,
  ErrorCode,
  formatOffset,
  isPublishableEventName,
  MAX_EVENT_NAME_LENGTH,
  type Offset,
  payloadShapeProblem,
  type StoredEventName,
  type TetherEvents,
} from "@tether/shared";
import { isStoreUnavailable, TetherError, toTetherError } from "../errors.js";
import type { AppendResult, HistoryStore } from "../store/types.js";
import type { BroadcastTarget, EphemeralSink } from "./broadcast.js";
import { roomStream, userStream } from "./streams.js";

/** Who receives a published event: every tab of a user, or every socket in a room. */
export type Target = { user: string } | { room: string };

export type { BroadcastTarget };

/** Options of one publish. */
export interface PublishOptions {
  /**
   * The publish's idempotency id, 1 to 200 visible ASCII characters: the same id on the
   * same target within `TETHER_RECOVERY_WINDOW` is published once, and every call with it
   * answers the first offset, on any instance. Reusing it with another event or data is
   * refused (INVALID_INPUT, HTTP 422). Default: a fresh id per `publish()` call (its own
   * retries stay safe, a call of yours again is another event).
   */
  id?: string;
  /** Stops retrying (the call rejects UNAVAILABLE): for a shutdown. A retry later under the same id stays safe. */
  signal?: AbortSignal;
  /**
   * An ephemeral event (typing, cursors, "is viewing"): not stored, no offset, never replayed
   * or recovered, sent once to whoever is connected now through the Socket.IO adapter, best
   * effort (one an instance misses while its Redis connection is down is gone). Targets a user
   * (`{ user }`: every connected socket of theirs, on every instance), a room (`{ room }`, or
   * `{ room, except: socketId }` for all but the sender: `EventContext.socketId` in a `handle()`
   * handler) or `{ everyone: true }`; resolves to undefined. A room's arrives with `room` added,
   * a user's and everyone's as `data` itself. Only a Tether
   * server once attached sends them (a worker's publisher, or one not attached yet, rejects
   * INVALID_INPUT / UNAVAILABLE).
   */
  ephemeral?: boolean;
}

/** How a publisher retries and when it acknowledges. */
export interface PublishPolicy {
  /**
   * Transient store failures are retried (same id, backoff with jitter) until this long after
   * the call; an attempt under way at the deadline may take one Redis command timeout more.
   */
  deadlineMs: number;
  /** Acknowledge once this many replicas confirmed the write (Redis `WAIT`); 0: once the primary has it. */
  replicas: number;
  /** The longest `WAIT` for them, per attempt (below the Redis command timeout). */
  replicaTimeoutMs: number;
}

/** 30 s: longer than a typical Sentinel or Cluster failover (a few seconds to ~20 s). */
export const PUBLISH_DEFAULTS: PublishPolicy = { deadlineMs: 30_000, replicas: 0, replicaTimeoutMs: 1_000 };

/** Backoff between attempts: doubling from 25 ms to 1 s, each delay half fixed, half random. */
const BACKOFF_BASE_MS = 25;
const BACKOFF_MAX_MS = 1_000;
/** Ids the caller gives: printable, no spaces, bounded (they become part of a Redis key). */
const PUBLISH_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * Publishes events to users or rooms, on every instance; each gets an offset.
 * `E`, the app's event map, types the event names and their data.
 */
export interface Publisher<E extends TetherEvents = TetherEvents> {
  /**
   * Appends the event to the target's history and delivers it live, exactly once per
   * id (see {@link PublishOptions.id}). `data` arrives as the event's payload with
   * `offset` (and `room`) added. Store failures that pass (a failover's READONLY, a lost
   * connection, a timeout) are retried under the same id until `TETHER_PUBLISH_DEADLINE`;
   * only then does it reject, with UNAVAILABLE (publish again with the same id: still once).
   * Rejects with a TetherError INVALID_INPUT for a reserved event name (`welcome`,
   * `newListener`, …: see `isPublishableEventName` in @tether/shared), for `data` nested
   * too deep, too large or not JSON (see `payloadShapeProblem`), for `data` with a field
   * named `offset` or `room` (Tether adds those on delivery: rename yours), for a malformed id, and
   * (status 422) for an id already published with another event or data.
   *
   * @example
   * const offset = await tether.publisher.publish({ user: "alice" }, "build:log", { line: "ok" });
   * // once, however often it is retried (by you, or by a worker run again):
   * await tether.publisher.publish({ user: "alice" }, "order:paid", { order: 42 }, { id: "order-42-paid" });
   */
  publish<K extends StoredEventName<E>>(
    target: Target,
    event: K,
    data: AppEventData<E, K> & object,
    options?: PublishOptions & { ephemeral?: false },
  ): Promise<Offset>;
  /**
   * Sends an ephemeral event (see {@link PublishOptions.ephemeral}): no stream entry and no
   * offset, best effort, to a user's sockets, a room, a room but one socket, or everyone.
   *
   * @example
   * tether.handle("doc:typing", z.object({ doc: z.string() }), ({ doc }, { socketId }) =>
   *   tether.publisher.publish({ room: doc, except: socketId }, "doc:typing", { doc }, { ephemeral: true }),
   * );
   */
  publish<K extends AppServerEventName<E>>(
    target: BroadcastTarget,
    event: K,
    data: AppEventData<E, K> & object,
    options: PublishOptions & { ephemeral: true },
  ): Promise<undefined>;
}

/** A publish id reused with another event or data: refused, 422 as the Idempotency-Key draft has it. */
export class IdempotencyConflictError extends TetherError {
  override readonly status = 422;

  constructor(readonly firstOffset: Offset) {
    super(
      ErrorCode.InvalidInput,
      "This id was published already with another event or data; use a new id for a new event.",
    );
  }
}

/** The publisher over a history store: the store's append is also the fan-out. */
export class StreamPublisher implements Publisher {
  private readonly policy: PublishPolicy;

  /** @param ephemeral where ephemeral events go: undefined while there is none (a worker, a server not attached yet). */
  constructor(
    private readonly history: HistoryStore,
    policy: Partial<PublishPolicy> = {},
    private readonly ephemeral?: () => EphemeralSink | undefined,
  ) {
    this.policy = { ...PUBLISH_DEFAULTS, ...policy };
  }

  publish(
    target: Target,
    event: string,
    data: object,
    options?: PublishOptions & { ephemeral?: false },
  ): Promise<Offset>;
  publish(
    target: BroadcastTarget,
    event: string,
    data: object,
    options: PublishOptions & { ephemeral: true },
  ): Promise<undefined>;
  async publish(
    target: Target | BroadcastTarget,
    event: string,
    data: object,
    options: PublishOptions = {},
  ): Promise<Offset | undefined> {
    assertPublishable(event);
    assertPublishableData(data);
    if (options.ephemeral === true) return this.sendEphemeral(target, event, data);
    if (!isStreamTarget(target))
      throw new TetherError(
        ErrorCode.InvalidInput,
        "A stored event goes to { user } or { room }; { everyone } and { except } are for ephemeral events.",
      );
    if (options.id !== undefined) assertPublishId(options.id);
    const stream = "user" in target ? userStream(target.user) : roomStream(target.room);
    const body = JSON.stringify(data);
    // One id for every attempt of this call: a write that landed before a timeout is not written twice.
    const append = { id: options.id ?? randomUUID(), ...this.replicas() };
    const deadline = Date.now() + this.policy.deadlineMs;
    for (let attempt = 0; ; attempt++) {
      let result: AppendResult;
      try {
        result = await this.history.append(stream, event, body, append);
      } catch (err) {
        if (!isStoreUnavailable(err)) throw toTetherError(err);
        const left = deadline - Date.now();
        if (left <= 0 || options.signal?.aborted) throw notPublished(err);
        const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
        // The last attempt lands on the deadline rather than past it.
        const delay = Math.min(left, ceiling / 2 + (Math.random() * ceiling) / 2);
        await sleep(delay, undefined, { signal: options.signal }).catch(() => {
          throw notPublished(err);
        });
        continue;
      }
      const offset = formatOffset(result.id, result.epoch);
      if (result.status === "conflict") throw new IdempotencyConflictError(offset);
      return offset;
    }
  }

  private sendEphemeral(target: Target | BroadcastTarget, event: string, data: object): undefined {
    if (!isBroadcastTarget(target))
      throw new TetherError(
        ErrorCode.InvalidInput,
        "An ephemeral event goes to { user }, { room }, { room, except: socketId } or { everyone: true }.",
      );
    if (this.ephemeral === undefined)
      throw new TetherError(ErrorCode.InvalidInput, "Ephemeral events are sent by a Tether server, not a worker.");
    const sink = this.ephemeral();
    if (sink === undefined)
      throw new TetherError(ErrorCode.Unavailable, "Ephemeral events are sent once Tether is attached.");
    sink(target, event, data);
    return undefined;
  }

  private replicas(): { replicas?: number; replicaTimeoutMs?: number } {
    const { replicas, replicaTimeoutMs } = this.policy;
    return replicas > 0 ? { replicas, replicaTimeoutMs } : {};
  }
}

const isName = (name: unknown) => typeof name === "string" && name.length >= 1 && name.length <= 256;

/** `{ user }` or `{ room }` (a broadcast target's `everyone` or `except` is not one). */
function isStreamTarget(target: unknown): target is Target {
  if (target === null || typeof target !== "object" || "everyone" in target || "except" in target) return false;
  const t = target as Record<string, unknown>;
  return typeof t.user === "string" || typeof t.room === "string";
}

/** `{ user }`, `{ room }`, `{ room, except }` or `{ everyone: true }`. */
function isBroadcastTarget(target: unknown): target is BroadcastTarget {
  if (target === null || typeof target !== "object") return false;
  const t = target as Record<string, unknown>;
  const keys = Object.keys(t).sort().join(",");
  if (keys === "everyone") return t.everyone === true;
  if (keys === "user") return isName(t.user);
  if (keys === "room") return isName(t.room);
  return keys === "except,room" && isName(t.room) && isName(t.except);
}

function notPublished(cause: unknown): TetherError {
  return new TetherError(
    ErrorCode.Unavailable,
    "The event could not be published in time; publish it again with the same id.",
    { cause },
  );
}

/** A caller's publish id: INVALID_INPUT unless 1 to 200 visible ASCII characters. */
export function assertPublishId(id: unknown): asserts id is string {
  if (typeof id !== "string" || !PUBLISH_ID.test(id))
    throw new TetherError(ErrorCode.InvalidInput, "A publish id is 1 to 200 visible ASCII characters (no spaces).");
}

/** The publish-side half of the event-name rule: nothing reserved ever reaches a stream. */
export function assertPublishable(event: unknown): asserts event is string {
  if (!isPublishableEventName(event)) {
    throw new TetherError(
      ErrorCode.InvalidInput,
      `Event names are 1 to ${MAX_EVENT_NAME_LENGTH} characters and not reserved by Socket.IO or Tether.`,
    );
  }
}

/**
 * Fields Tether adds to every delivered event (`offset`; `room` for a room's event): an
 * app's data may not carry them, or they would be overwritten on delivery.
 */
export const RESERVED_DATA_FIELDS = ["offset", "room"] as const;

/**
 * The publish-side payload rule, for every publish entry (HTTP, in-process, worker):
 * checked without recursion before JSON.stringify walks it (a deep one overflowed the stack),
 * and without a reserved top-level field (INVALID_INPUT naming it: see RESERVED_DATA_FIELDS).
 */
export function assertPublishableData(data: unknown): void {
  const problem = payloadShapeProblem(data);
  if (problem !== undefined)
    throw new TetherError(ErrorCode.InvalidInput, `The event data cannot be published: ${problem}.`);
  if (data === null || typeof data !== "object") return;
  const reserved = RESERVED_DATA_FIELDS.find((field) => Object.hasOwn(data, field));
  if (reserved !== undefined)
    throw new TetherError(
      ErrorCode.InvalidInput,
      `The event data cannot carry a field named "${reserved}": Tether adds ${RESERVED_DATA_FIELDS.map((f) => `"${f}"`).join(" and ")} on delivery. Rename it.`,
    );
}
