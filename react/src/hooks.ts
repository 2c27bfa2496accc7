import type {
  HistoryEvent,
  HistoryOptions,
  HistoryPage,
  PresenceData,
  RoomMember,
  Subscription,
  SubscriptionOptions,
  SubscriptionState,
  TetherClient,
  TetherClientError,
  TetherClientEvents,
  TetherState,
} from "@tether/client";
import {
  type AppServerEventName,
  type AppServerEventPayload,
  isReservedEventName,
  type PresencePayload,
  ServerEvent,
  type TetherEvents,
} from "@tether/shared";
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from "react";
import { appendBounded, DEFAULT_KEEP_EVENTS, keepOf, MAX_KEEP_EVENTS } from "./bounded.js";
import { holdRoom, useClient } from "./provider.js";

/** One app event of a room, as `useSubscription` lists it: its name and payload (with `offset` and `room`). */
export type RoomEvent<E extends TetherEvents = TetherEvents> = {
  [K in AppServerEventName<E>]: { name: K; payload: AppServerEventPayload<E, K> };
}[AppServerEventName<E>];

/** The provider's client, typed by the app's event map. */
export function useTether<E extends TetherEvents = TetherEvents>(): TetherClient<E> {
  return useClient() as unknown as TetherClient<E>;
}

/** The client's connection state, re-rendering on every change. */
export function useConnectionState(): TetherState {
  const client = useClient();
  const subscribe = useCallback((changed: () => void) => client.on("state", () => changed()), [client]);
  const read = () => client.state;
  return useSyncExternalStore(subscribe, read, read);
}

/** The latest value of `value`, for listeners registered once. */
function useLatest<T>(value: T): { readonly current: T } {
  const ref = useRef(value);
  useEffect(() => {
    ref.current = value;
  });
  return ref;
}

/**
 * Listens to a client event (the client's own, the server's, or the app's) while the
 * component is mounted: one listener however often it renders, removed on unmount
 * with the function `on()` returned. `handler` may change on every render.
 */
export function useEvent<E extends TetherEvents = TetherEvents, K extends keyof TetherClientEvents<E> = never>(
  event: K,
  handler: TetherClientEvents<E>[K],
): void {
  const client = useClient();
  const latest = useLatest(handler as (...args: unknown[]) => void);
  useEffect(
    () => client.on(event as never, ((...args: unknown[]) => latest.current(...args)) as never),
    [client, event, latest],
  );
}

/** Built-in server events: never listed as a room's app events. */
const BUILT_IN: ReadonlySet<string> = new Set(Object.values(ServerEvent));

/** An app event (a subscription's `onAny` also hears the room's presence and recovery). */
const isAppEvent = (name: string): boolean => !BUILT_IN.has(name) && !isReservedEventName(name);

/** What {@link useSubscription} takes. */
export interface UseSubscriptionOptions<E extends TetherEvents = TetherEvents> extends SubscriptionOptions {
  /** Keep this many of the latest events in `events` (default {@link DEFAULT_KEEP_EVENTS}, at most {@link MAX_KEEP_EVENTS}; 0: none). */
  keep?: number;
  /** Called with each app event of the room, once (e.g. a reducer's `dispatch`); may change on every render. */
  onEvent?: (event: RoomEvent<E>) => void;
  /** Load the room's last `history` events once it is first subscribed (into `history`). */
  history?: number;
}

/** What {@link useSubscription} returns. */
export interface SubscriptionView<E extends TetherEvents = TetherEvents> {
  /** The subscription, shared by every component that uses the room (undefined before the first effect). */
  subscription: Subscription<E> | undefined;
  state: SubscriptionState;
  /** The latest app events of the room since this component subscribed, oldest first. */
  events: RoomEvent<E>[];
  /** The events loaded with the `history` option (oldest first), once loaded. */
  history: HistoryEvent[] | undefined;
  /** The last error: a join that will be retried, or the refusal that ended the subscription. */
  error: TetherClientError | undefined;
  /** The room's last events on demand (see `Subscription.history`). */
  loadHistory(options?: HistoryOptions): Promise<HistoryPage>;
  /** The room's members now, with their presence data. */
  members(): Promise<RoomMember[]>;
  /** Sets this user's presence data in the room. */
  setPresence(data: PresenceData): Promise<void>;
}

/**
 * A room the component is in while mounted: the client's subscription of the room,
 * shared and reference-counted by room (one join however many components and
 * StrictMode mounts use it; the room is left after the last unmounts), with its
 * state, its latest events and history. `options` (presence data, start offset) are
 * those of the first component to use the room; a change of `room` moves to the new one.
 *
 * @example
 * const { state, events } = useSubscription("doc:42", { history: 20 });
 */
export function useSubscription<E extends TetherEvents = TetherEvents>(
  room: string,
  options: UseSubscriptionOptions<E> = {},
): SubscriptionView<E> {
  const client = useClient();
  const keep = keepOf(options.keep);
  const historyLimit = options.history;
  const onEvent = useLatest(options.onEvent);
  const joinOptions = useLatest<SubscriptionOptions>({ offset: options.offset, presence: options.presence });
  const [subscription, setSubscription] = useState<Subscription<TetherEvents>>();
  const [state, setState] = useState<SubscriptionState>("subscribing");
  const [events, setEvents] = useState<RoomEvent<E>[]>([]);
  const [history, setHistory] = useState<HistoryEvent[]>();
  const [error, setError] = useState<TetherClientError>();

  useEffect(() => {
    const lease = holdRoom(client, room, withoutUndefined(joinOptions.current));
    const handle = lease.value;
    setSubscription(handle);
    setState(handle.state);
    setEvents([]);
    setHistory(undefined);
    setError(undefined);
    let historyAsked = false;
    const loadHistory = () => {
      if (historyLimit === undefined || historyAsked) return;
      historyAsked = true;
      handle.history({ limit: historyLimit }).then(
        (page) => setHistory(page.events),
        (failed: TetherClientError) => setError(failed),
      );
    };
    const stops = [
      handle.on("state", (next) => {
        setState(next);
        if (next === "subscribed") loadHistory();
      }),
      handle.on("error", setError),
      handle.on("ended", (end) => {
        if (end.reason === "refused") setError(end.error);
      }),
      handle.onAny((name, payload) => {
        if (!isAppEvent(name)) return;
        const event = { name, payload } as RoomEvent<E>;
        onEvent.current?.(event);
        if (keep > 0) setEvents((before) => appendBounded(before, event, keep));
      }),
    ];
    if (handle.state === "subscribed") loadHistory();
    return () => {
      for (const stop of stops) stop();
      lease.release();
    };
  }, [client, room, keep, historyLimit, onEvent, joinOptions]);

  const loadHistory = useCallback(
    (page: HistoryOptions = {}) => client.history({ ...withoutUndefined(page), room }),
    [client, room],
  );
  const members = useCallback(() => client.members(room), [client, room]);
  const setPresence = useCallback((data: PresenceData) => client.setPresence(room, data), [client, room]);
  return {
    subscription: subscription as Subscription<E> | undefined,
    state,
    events,
    history,
    error,
    loadHistory,
    members,
    setPresence,
  };
}

/** What {@link usePresence} returns. */
export interface PresenceView {
  /** The room's members (at most the server's list), kept current by presence events; empty until loaded. */
  members: RoomMember[];
  /** The list was loaded since the room was last (re)subscribed. */
  loaded: boolean;
  /** Sets this user's presence data in the room. */
  setPresence(data: PresenceData): Promise<void>;
}

/**
 * The room's members, live: loaded when the room is subscribed (and again after every
 * reconnect), then kept current by `presence:join`, `presence:leave` and
 * `presence:update`. Holds the room's shared subscription like {@link useSubscription}
 * (one join between them).
 */
export function usePresence(room: string, options: SubscriptionOptions = {}): PresenceView {
  const client = useClient();
  const joinOptions = useLatest(options);
  const [members, setMembers] = useState<RoomMember[]>([]);
  const [loaded, setLoaded] = useState(false);

  useEffect(() => {
    const lease = holdRoom(client, room, withoutUndefined(joinOptions.current));
    const handle = lease.value;
    let current = true;
    setMembers([]);
    setLoaded(false);
    const show = (list: RoomMember[]) => {
      if (!current) return;
      setMembers(list);
      setLoaded(true);
    };
    const load = () => {
      handle.presence().then(show, () => undefined);
    };
    const upsert = ({ userId, data }: PresencePayload, joined: boolean) =>
      setMembers((list) => {
        const found = list.find((member) => member.userId === userId);
        if (!found) return [...list, withoutUndefined({ userId, connections: 1, data })];
        return list.map((member) =>
          member.userId === userId
            ? withoutUndefined({ ...member, data: joined ? data : (data ?? member.data) })
            : member,
        );
      });
    const stops = [
      handle.on("subscribed", ({ members: listed }) => (listed ? show(listed) : load())),
      handle.on("presence:join", (payload) => upsert(payload, true)),
      handle.on("presence:update", (payload) => upsert(payload, false)),
      handle.on("presence:leave", ({ userId }) =>
        setMembers((list) => list.filter((member) => member.userId !== userId)),
      ),
    ];
    if (handle.state === "subscribed") load();
    return () => {
      current = false;
      for (const stop of stops) stop();
      lease.release();
    };
  }, [client, room, joinOptions]);

  const setPresence = useCallback((data: PresenceData) => client.setPresence(room, data), [client, room]);
  return { members, loaded, setPresence };
}

/** `value` without its undefined fields (the client's options are exact about optional ones). */
function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}
