import type {
  AppEventPayload,
  DemoEvents,
  Ephemeral,
  ErrorCode,
  EventAck,
  JobProgressPayload,
  Offset,
  RecoveryPayload,
  ServerToClientEvents,
  SessionEndedPayload,
  WelcomePayload,
  WsTokenResponse,
} from "@tether/shared";
import { describe, expectTypeOf, it } from "vitest";
import {
  createTetherClient,
  type LoginCredentials,
  type TetherClient,
  type TetherClientError,
  type TetherClientOptions,
  type TetherState,
} from "../src/index.js";

/** The public API's types, checked by the type checker (these bodies never run a connection). */
describe("@tether/client public types", () => {
  it("createTetherClient returns a TetherClient with typed state", () => {
    expectTypeOf(createTetherClient).returns.toEqualTypeOf<TetherClient>();
    expectTypeOf<TetherClient["state"]>().toEqualTypeOf<TetherState>();
    expectTypeOf<TetherState>().toEqualTypeOf<
      "connecting" | "connected" | "reconnecting" | "unauthenticated" | "closed"
    >();
  });

  it("login takes an API key or any JSON body; tokens may come from the host's getToken", () => {
    expectTypeOf<TetherClient["login"]>().parameter(0).toEqualTypeOf<LoginCredentials>();
    expectTypeOf<string>().toExtend<LoginCredentials>();
    expectTypeOf<{ username: string; password: string }>().toExtend<LoginCredentials>();
    expectTypeOf<TetherClientOptions["getToken"]>().toEqualTypeOf<
      (() => Promise<{ token: string; expiresAt?: number }>) | undefined
    >();
  });

  it("tokens may come from the host's tokenUrl, and connect() returns the client, typed by its map", () => {
    expectTypeOf<TetherClientOptions["tokenUrl"]>().toEqualTypeOf<string | URL | undefined>();
    const made = () => createTetherClient<DemoEvents>({ tokenUrl: "/tether-token" }).connect();
    expectTypeOf(made).returns.toEqualTypeOf<TetherClient<DemoEvents>>();
  });

  it("the demo's events are not Tether's: typed only through the DemoEvents map", () => {
    expectTypeOf<Extract<keyof ServerToClientEvents, `job:${string}`>>().toBeNever();
    const on = (client: TetherClient<DemoEvents>) => {
      client.on("job:progress", (p) => {
        expectTypeOf(p.step).toEqualTypeOf<number>();
        expectTypeOf(p.offset).toEqualTypeOf<JobProgressPayload["offset"]>();
      });
    };
    expectTypeOf(on).toBeFunction();
  });

  it("server events reach listeners with their payload types", () => {
    const on = (client: TetherClient) => {
      client.on("welcome", (w) => expectTypeOf(w).toEqualTypeOf<WelcomePayload>());
      client.on("recovery", (r) => expectTypeOf(r).toEqualTypeOf<RecoveryPayload>());
      client.on("session:ended", (e) => expectTypeOf(e).toEqualTypeOf<SessionEndedPayload>());
      client.on("state", (s) => expectTypeOf(s).toEqualTypeOf<TetherState>());
      client.on("error", (e) => expectTypeOf(e).toEqualTypeOf<TetherClientError>());
    };
    expectTypeOf(on).parameter(0).toEqualTypeOf<TetherClient>();
  });

  it("on and once return the function that removes the listener", () => {
    const check = (client: TetherClient) => {
      expectTypeOf(client.on("state", () => {})).toEqualTypeOf<() => void>();
      expectTypeOf(client.once("welcome", () => {})).toEqualTypeOf<() => void>();
    };
    expectTypeOf(check).parameter(0).toEqualTypeOf<TetherClient>();
  });

  it("errors carry a wire code and whether to retry", () => {
    expectTypeOf<TetherClientError["retryable"]>().toEqualTypeOf<boolean>();
    expectTypeOf<ErrorCode>().toExtend<TetherClientError["code"]>();
    expectTypeOf<WsTokenResponse>().toEqualTypeOf<{ token: string; expiresAt: number }>();
  });
});

interface AppEvents {
  server: { "build:log": { line: string } };
  client: {
    "chat:send": { payload: { text: string }; result: { id: string } };
    "chat:typing": { payload: { on: boolean } };
  };
}

describe("typed app events (one event map for both ends)", () => {
  it("createTetherClient<Events>() types the app's events on `on`, with the offset added", () => {
    expectTypeOf(createTetherClient<AppEvents>).returns.toEqualTypeOf<TetherClient<AppEvents>>();
    const check = (client: TetherClient<AppEvents>) => {
      client.on("build:log", (payload) => {
        expectTypeOf(payload).toEqualTypeOf<AppEventPayload<{ line: string }>>();
        expectTypeOf(payload.line).toEqualTypeOf<string>();
        expectTypeOf(payload.offset).toEqualTypeOf<Offset>();
        expectTypeOf(payload.room).toEqualTypeOf<string | undefined>();
      });
      client.on("welcome", (w) => expectTypeOf(w).toEqualTypeOf<WelcomePayload>());
      // @ts-expect-error: not an event of the map
      client.on("build:lgo", () => {});
    };
    expectTypeOf(check).parameter(0).toEqualTypeOf<TetherClient<AppEvents>>();
  });

  it("an event the map marks Ephemeral arrives without an offset (on the client, a subscription and onAny alike)", () => {
    interface WithEphemeral {
      server: { "doc:edit": { text: string }; "doc:typing": Ephemeral<{ userId: string }> };
    }
    const check = (client: TetherClient<WithEphemeral>) => {
      client.on("doc:typing", (payload) => {
        expectTypeOf(payload.userId).toEqualTypeOf<string>();
        expectTypeOf(payload.offset).toEqualTypeOf<undefined>();
        expectTypeOf(payload.room).toEqualTypeOf<string | undefined>();
        // @ts-expect-error: an ephemeral event's payload has no offset to echo back
        const offset: Offset = payload.offset;
        return offset;
      });
      client.subscribe("doc:1").on("doc:typing", (payload) => expectTypeOf(payload.offset).toEqualTypeOf<undefined>());
      // Stored events of the same map keep their offset.
      client.on("doc:edit", (payload) => expectTypeOf(payload.offset).toEqualTypeOf<Offset>());
    };
    expectTypeOf(check).parameter(0).toEqualTypeOf<TetherClient<WithEphemeral>>();
    expectTypeOf<AppEventPayload<Ephemeral<{ n: number }>>>().toEqualTypeOf<
      { n: number } & { offset?: undefined; room?: string }
    >();
  });

  it("a subscription's `on` is typed by the same map, and returns the unsubscribe", () => {
    const check = async (client: TetherClient<AppEvents>) => {
      const doc = client.subscribe("doc:1", { presence: { cursor: 1 } });
      expectTypeOf(client.room("doc:1")).toEqualTypeOf(doc);
      const stop = doc.on("build:log", (payload) => expectTypeOf(payload.line).toEqualTypeOf<string>());
      expectTypeOf(stop).toEqualTypeOf<() => void>();
      doc.on("presence:update", ({ userId, data }) => {
        expectTypeOf(userId).toEqualTypeOf<string>();
        expectTypeOf(data).toEqualTypeOf<Record<string, unknown> | undefined>();
      });
      doc.on("ended", (end) => {
        if (end.reason === "refused") expectTypeOf(end.error).toEqualTypeOf<TetherClientError>();
      });
      doc.on("subscribed", ({ offset }) => expectTypeOf(offset).toEqualTypeOf<Offset>());
      expectTypeOf(doc.state).toEqualTypeOf<"subscribing" | "subscribed" | "ended">();
      const page = await doc.history({ limit: 10, before: "1-0" });
      expectTypeOf(page.events[0]?.offset).toEqualTypeOf<Offset | undefined>();
      expectTypeOf(await client.history()).toEqualTypeOf(page);
      // @ts-expect-error: not an event of the map
      doc.on("build:lgo", () => {});
    };
    expectTypeOf(check).returns.resolves.toBeVoid();
  });

  it("emit and emitWithAck check the payload and type the result", () => {
    const check = async (client: TetherClient<AppEvents>) => {
      expectTypeOf(await client.emitWithAck("chat:send", { text: "hi" })).toEqualTypeOf<{ id: string }>();
      expectTypeOf(await client.emitWithAck("chat:typing", { on: true })).toEqualTypeOf<void>();
      expectTypeOf(await client.emitWithAck("echo", 1)).toEqualTypeOf<unknown>();
      client.emit("chat:typing", { on: false });
      // @ts-expect-error: wrong payload
      await client.emitWithAck("chat:send", { text: 1 });
      // @ts-expect-error: not an event of the map
      client.emit("chat:sned", { text: "hi" });
    };
    expectTypeOf(check).returns.resolves.toBeVoid();
    expectTypeOf<EventAck<{ id: string }>>().toEqualTypeOf<
      { ok: true; result: { id: string } } | { ok: false; error: { code: ErrorCode; message: string } }
    >();
  });

  it("without a map: any app event on `on` (its data with the offset) and on `emit`, and onAny", () => {
    const check = async (client: TetherClient) => {
      const stop = client.on("invoice:paid", (payload) => {
        expectTypeOf(payload).toEqualTypeOf<AppEventPayload<Record<string, unknown>>>();
        expectTypeOf(payload.offset).toEqualTypeOf<Offset>();
      });
      expectTypeOf(stop).toEqualTypeOf<() => void>();
      client.on("state", (s) => expectTypeOf(s).toEqualTypeOf<TetherState>());
      expectTypeOf(client.onAny((event: string, ..._args: unknown[]) => event)).toEqualTypeOf<() => void>();
      expectTypeOf(await client.emitWithAck("anything", { any: 1 })).toEqualTypeOf<unknown>();
    };
    expectTypeOf(check).parameter(0).toEqualTypeOf<TetherClient>();
  });
});
