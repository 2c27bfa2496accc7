import type { SubscriptionOptions, TetherClient, TetherClientEvents, TetherState } from "@tether/client";
import type { TetherEvents } from "@tether/shared";
import type { ReactNode } from "react";
import {
  type PresenceView,
  type SubscriptionView,
  type UseSubscriptionOptions,
  useConnectionState,
  useEvent,
  usePresence,
  useSubscription,
  useTether,
} from "./hooks.js";
import { TetherProvider, type TetherProviderProps } from "./provider.js";

/** The provider and hooks, typed by one event map: what {@link createTetherHooks} returns. */
export interface TetherHooks<E extends TetherEvents> {
  TetherProvider: (props: TetherProviderProps<E>) => ReactNode;
  useTether: () => TetherClient<E>;
  useConnectionState: () => TetherState;
  useEvent: <K extends keyof TetherClientEvents<E>>(event: K, handler: TetherClientEvents<E>[K]) => void;
  useSubscription: (room: string, options?: UseSubscriptionOptions<E>) => SubscriptionView<E>;
  usePresence: (room: string, options?: SubscriptionOptions) => PresenceView;
}

/**
 * The provider and hooks typed by the app's event map, the same `E` as
 * `createTetherClient<E>()`: made once, at module level, and imported by components.
 *
 * @example
 * interface AppEvents { server: { "chat:message": { text: string } } }
 * export const { TetherProvider, useEvent, useSubscription } = createTetherHooks<AppEvents>();
 * // in a component:
 * useEvent("chat:message", ({ text, offset }) => show(text)); // typed
 */
export function createTetherHooks<E extends TetherEvents>(): TetherHooks<E> {
  return {
    TetherProvider: TetherProvider as (props: TetherProviderProps<E>) => ReactNode,
    useTether: useTether<E>,
    useConnectionState,
    useEvent: useEvent as TetherHooks<E>["useEvent"],
    useSubscription: useSubscription<E>,
    usePresence,
  };
}
