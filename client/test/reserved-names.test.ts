/**
 * Every built-in event name is reserved (no publisher may use it): enumerated from the
 * protocol's own constants (ServerEvent, ClientEvent, the client events' schemas) at run
 * time, and from the event types (both directions, the client's and a subscription's own
 * events) at the type level, so an event added to any of them and forgotten fails here.
 */
import {
  ClientEvent,
  ClientEventSchemas,
  type ClientToServerEvents,
  isPublishableEventName,
  isReservedEventName,
  type ReservedEventName,
  ServerEvent,
  type ServerToClientEvents,
} from "@tether/shared";
import { describe, expect, expectTypeOf, it } from "vitest";
import type { ClientOwnEvents, SubscriptionOwnEvents } from "../src/types.js";

describe("reserved event names", () => {
  it("every protocol event name, both ways, is reserved and unpublishable", () => {
    const builtIn = [...Object.values(ServerEvent), ...Object.values(ClientEvent), ...Object.keys(ClientEventSchemas)];
    const open = builtIn.filter((name) => !isReservedEventName(name) || isPublishableEventName(name));
    expect(open).toEqual([]);
    expect(isReservedEventName("presence:update")).toBe(true);
  });

  it("the SDK's own events (the client's and a subscription's) are reserved", () => {
    for (const name of ["state", "error", "subscribed", "ended"]) expect(isReservedEventName(name)).toBe(true);
    expect(isPublishableEventName("doc:edit")).toBe(true);
  });

  it("at the type level: every key of the event types is a ReservedEventName", () => {
    expectTypeOf<keyof ServerToClientEvents>().toExtend<ReservedEventName>();
    expectTypeOf<keyof ClientToServerEvents>().toExtend<ReservedEventName>();
    expectTypeOf<keyof ClientOwnEvents>().toExtend<ReservedEventName>();
    expectTypeOf<keyof SubscriptionOwnEvents>().toExtend<ReservedEventName>();
  });
});
