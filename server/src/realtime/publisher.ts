import {
  type AppEventData,
  type AppServerEventName,
  ErrorCode,
  formatOffset,
  isPublishableEventName,
  MAX_EVENT_NAME_LENGTH,
  type Offset,
  payloadShapeProblem,
  type TetherEvents,
} from "@tether/shared";
import { TetherError } from "../errors.js";
import type { HistoryStore } from "../store/types.js";
import { roomStream, userStream } from "./streams.js";

/** Who receives a published event: every tab of a user, or every socket in a room. */
export type Target = { user: string } | { room: string };

/**
 * Publishes events to users or rooms, on every instance; each gets an offset.
 * `E`, the app's event map, types the event names and their data.
 */
export interface Publisher<E extends TetherEvents = TetherEvents> {
  /**
   * Appends the event to the target's history and delivers it live. `data`
   * arrives as the event's payload with `offset` (and `room`) added. Rejects
   * with a TetherError INVALID_INPUT for a reserved event name (`welcome`,
   * `newListener`, …: see `isPublishableEventName` in @tether/shared), and for
   * `data` nested too deep, too large or not JSON (see `payloadShapeProblem`).
   *
   * @example
   * const offset = await tether.publisher.publish({ user: "alice" }, "build:log", { line: "ok" });
   */
  publish<K extends AppServerEventName<E>>(
    target: Target,
    event: K,
    data: AppEventData<E, K> & object,
  ): Promise<Offset>;
}

/** The publisher over a history store: the store's append is also the fan-out. */
export class StreamPublisher implements Publisher {
  constructor(private readonly history: HistoryStore) {}

  async publish(target: Target, event: string, data: object): Promise<Offset> {
    assertPublishable(event);
    assertPublishableData(data);
    const stream = "user" in target ? userStream(target.user) : roomStream(target.room);
    const { id, epoch } = await this.history.append(stream, event, JSON.stringify(data));
    return formatOffset(id, epoch);
  }
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
 * The publish-side payload rule, for every publish entry (HTTP, in-process, worker):
 * checked without recursion before JSON.stringify walks it (a deep one overflowed the stack).
 */
export function assertPublishableData(data: unknown): void {
  const problem = payloadShapeProblem(data);
  if (problem !== undefined)
    throw new TetherError(ErrorCode.InvalidInput, `The event data cannot be published: ${problem}.`);
}
