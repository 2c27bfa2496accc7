import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { ErrorCode } from "./codes.js";
import type { ReservedEventName } from "./event-names.js";
import type { ClientToServerEvents } from "./events.js";
import type { Offset } from "./offset.js";

export type { StandardSchemaV1 } from "@standard-schema/spec";

/**
 * An app's own events, one type shared by `createTether<E>()`, `createPublisher<E>()`
 * and `createTetherClient<E>()`: `server` maps each server → client event to its data
 * (what `publish` takes; listeners get it with `offset` added), `client` maps each
 * client → server event to its payload and the result its handler acknowledges with.
 * A side left out stays untyped. Wrap the data of an event you only ever publish ephemeral
 * in {@link Ephemeral}: its listeners then get no `offset` (ephemeral events have none).
 *
 * @example
 * interface AppEvents {
 *   server: { "build:log": { line: string } };
 *   client: { "chat:send": { payload: { text: string }; result: { id: string } } };
 * }
 */
export interface TetherEvents {
  server?: object;
  client?: object;
}

/** No event map: any publishable name with a JSON object, any client event with any payload. */
export interface UntypedEvents {
  server: Record<string, object>;
  client: Record<string, { payload: unknown; result: unknown }>;
}

/** A map given as `object` (the constraint itself, or a side left out) is untyped. */
// biome-ignore lint/complexity/noBannedTypes: `{} extends M` is true exactly for a map with no required event.
type OrUntyped<M, Untyped> = {} extends M ? Untyped : M;

/** The server → client side of an event map. */
export type ServerEventsOf<E extends TetherEvents> = OrUntyped<NonNullable<E["server"]>, UntypedEvents["server"]>;
/** The client → server side of an event map. */
export type ClientEventsOf<E extends TetherEvents> = OrUntyped<NonNullable<E["client"]>, UntypedEvents["client"]>;

/** Names an app may publish: its own, never Socket.IO's or Tether's reserved ones. */
export type AppServerEventName<E extends TetherEvents> = Exclude<keyof ServerEventsOf<E> & string, ReservedEventName>;
/** Names an app's clients may emit to its handlers. */
export type AppClientEventName<E extends TetherEvents> = Exclude<
  keyof ClientEventsOf<E> & string,
  ReservedEventName | keyof ClientToServerEvents
>;

declare const ephemeralData: unique symbol;

/**
 * Marks an event of a map's `server` side as ephemeral (published with `{ ephemeral: true }`:
 * typing, cursors): `publish` takes `Data` as usual, and listeners get it without an `offset`
 * (and with `room` only for a room's). A type only: nothing of it exists at run time.
 *
 * @example
 * interface AppEvents {
 *   server: { "doc:edit": { text: string }; "doc:typing": Ephemeral<{ userId: string }> };
 * }
 * client.on("doc:typing", ({ userId, offset }) => {}); // offset: undefined
 */
export interface Ephemeral<Data extends object> {
  readonly [ephemeralData]: Data;
}

/** An event map entry's data: the entry itself, or what {@link Ephemeral} wraps. */
export type EntryData<Entry> = Entry extends Ephemeral<infer Data> ? Data : Entry;

/** What `publish` takes for an app event. */
export type AppEventData<E extends TetherEvents, K extends AppServerEventName<E>> = EntryData<ServerEventsOf<E>[K]>;
/**
 * What a listener receives for the data (or map entry) `Data`: the published data, its
 * offset, and the room for a room's event; for an {@link Ephemeral} entry, the data without
 * an offset (`offset` is undefined) and the room for a room's.
 */
export type AppEventPayload<Data> =
  Data extends Ephemeral<infer Inner>
    ? Inner & { offset?: undefined; room?: string }
    : Data & { offset: Offset; room?: string };
/** What a listener of the app event `K` receives (see {@link AppEventPayload}). */
export type AppServerEventPayload<E extends TetherEvents, K extends AppServerEventName<E>> = AppEventPayload<
  ServerEventsOf<E>[K]
>;
/** The app's server → client events that are stored (not marked {@link Ephemeral}): what a stored publish takes. */
export type StoredEventName<E extends TetherEvents> = {
  [K in AppServerEventName<E>]: ServerEventsOf<E>[K] extends Ephemeral<object> ? never : K;
}[AppServerEventName<E>];

type Entry<E extends TetherEvents, K extends AppClientEventName<E>> = ClientEventsOf<E>[K];
/** The payload of a client → server event (what its schema must produce). */
export type AppClientPayload<E extends TetherEvents, K extends AppClientEventName<E>> =
  Entry<E, K> extends { payload: infer P } ? P : unknown;
/** What the handler of a client → server event acknowledges with (nothing, when the map names no result). */
export type AppClientResult<E extends TetherEvents, K extends AppClientEventName<E>> =
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler without a result may be `async () => {}`.
  Entry<E, K> extends { result: infer R } ? R : void;

/**
 * The acknowledgement of every handled client → server event (and of every refused
 * event): the handler's result, or an error with a wire code (INVALID_INPUT for an
 * unknown event or an invalid payload, RATE_LIMITED, INTERNAL for a handler's bug,
 * or the code of the TetherError the handler threw).
 */
export type EventAck<Result = unknown> = { ok: true; result: Result } | { ok: false; error: EventAckError };

export interface EventAckError {
  code: ErrorCode;
  message: string;
}

/** The output type of a Standard Schema (zod, valibot, arktype, …). */
export type SchemaOutput<S extends StandardSchemaV1> = StandardSchemaV1.InferOutput<S>;
