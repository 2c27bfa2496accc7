import {
  createTetherClient,
  type Subscription,
  type SubscriptionOptions,
  type TetherClient,
  type TetherClientOptions,
} from "@tether/client";
import type { TetherEvents } from "@tether/shared";
import { createContext, createElement, type ReactNode, useContext, useEffect, useRef, useState } from "react";
import { type Lease, nextTask, SharedResource } from "./shared-resource.js";

/** The untyped client every hook works with inside; the typed hooks narrow it. */
type AnyClient = TetherClient<TetherEvents>;

/**
 * The connection each client is kept in while a provider asks for it: `connect()`
 * once for all the providers (and StrictMode's second mount), `disconnect()` after
 * the last one lets go.
 */
const connections = new SharedResource<AnyClient, AnyClient>(
  (client) => {
    client.connect();
    return client;
  },
  (client) => client.disconnect(),
);

/** The rooms a client's components subscribe to, reference-counted per room: one join, one leave. */
const roomsByClient = new WeakMap<AnyClient, Rooms>();

/** The subscriptions of one client, shared by every component that uses a room. */
export type Rooms = SharedResource<string, Subscription<TetherEvents>, SubscriptionOptions>;

/** The rooms of `client` (made on first use). */
export function roomsOf(client: AnyClient): Rooms {
  let rooms = roomsByClient.get(client);
  if (!rooms) {
    const made: Rooms = new SharedResource(
      (room, options) => {
        const subscription = client.subscribe(room, options);
        // Refused (or left elsewhere): the next component to use the room subscribes anew.
        subscription.once("ended", () => made.forget(room, subscription));
        return subscription;
      },
      (subscription) => {
        subscription.leave().catch(() => undefined);
      },
    );
    rooms = made;
    roomsByClient.set(client, rooms);
  }
  return rooms;
}

/** Takes a hold on the room's subscription of `client`; release it when the component is done. */
export function holdRoom(
  client: AnyClient,
  room: string,
  options: SubscriptionOptions,
): Lease<Subscription<TetherEvents>> {
  return roomsOf(client).acquire(room, options);
}

export const TetherContext = createContext<AnyClient | undefined>(undefined);

/** What {@link TetherProvider} takes: a client, or the options to make one. */
export interface TetherProviderProps<E extends TetherEvents = TetherEvents> {
  /**
   * The client the hooks use, typically made once at module level. Without it the
   * provider makes one from `options` when it mounts and closes it when it unmounts.
   */
  client?: TetherClient<E>;
  /** Options of the client the provider makes when no `client` is given; read once, at mount. */
  options?: TetherClientOptions;
  /**
   * Keep the client connected while mounted with this true (the default): `connect()` on
   * mount, `disconnect()` after the last provider of the client unmounts or says false.
   * Pass `false` until the user is logged in, or to manage the connection yourself.
   */
  connect?: boolean;
  /** Rendered until the client the provider makes from `options` exists (after mount). Default: nothing. */
  fallback?: ReactNode;
  children?: ReactNode;
}

/**
 * Gives its children a Tether client: the one passed, or one it makes from `options`.
 * Correct under StrictMode's double mount: one client, one `connect()`, and a pending
 * close cancelled by the second mount.
 *
 * @example
 * const client = createTetherClient();
 * root.render(
 *   <TetherProvider client={client} connect={loggedIn}>
 *     <App />
 *   </TetherProvider>,
 * );
 */
export function TetherProvider<E extends TetherEvents = TetherEvents>(props: TetherProviderProps<E>): ReactNode {
  const given = props.client as AnyClient | undefined;
  const [made, setMade] = useState<AnyClient | undefined>(undefined);
  /** The client this provider made, and the close pending since its last unmount. */
  const own = useRef<{ client: AnyClient; cancelClose: (() => void) | undefined } | undefined>(undefined);
  const options = useRef(props.options);

  useEffect(() => {
    if (given) return;
    // Made in an effect, never in render: in a browser a client takes part in tab sharing from birth.
    let mine = own.current;
    if (mine) {
      mine.cancelClose?.();
      mine.cancelClose = undefined;
    } else {
      mine = { client: createTetherClient(options.current ?? {}) as AnyClient, cancelClose: undefined };
      own.current = mine;
    }
    setMade(mine.client);
    const held = mine;
    return () => {
      held.cancelClose = nextTask(() => {
        if (own.current === held) own.current = undefined;
        held.client.close();
      });
    };
  }, [given]);

  const client = given ?? made;
  const connect = props.connect ?? true;
  useEffect(() => {
    if (!client || !connect) return;
    return connections.acquire(client, undefined).release;
  }, [client, connect]);

  if (!client) return props.fallback ?? null;
  return createElement(TetherContext.Provider, { value: client }, props.children);
}

/** The provider's client; throws outside a {@link TetherProvider}. */
export function useClient(): AnyClient {
  const client = useContext(TetherContext);
  if (!client) throw new Error("Tether hooks must be used inside a <TetherProvider>");
  return client;
}
