import type { Server as HttpServer, IncomingMessage } from "node:http";
import type { ErrorCode, SessionEndReason } from "@tether/shared";
import type { Request, RequestHandler } from "express";
import * as v from "valibot";
import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";
import {
  createPublisher,
  createTether,
  type Ephemeral,
  type EventAck,
  type EventContext,
  type GrantFor,
  type HostSessionGrant,
  type LoginCheck,
  type LoginResult,
  type Publisher,
  type Target,
  type Tether,
  type TetherConfig,
  type TetherServer,
  type WorkerPublisher,
} from "../src/index.js";

/** The public API's types, checked by the type checker. */
describe("@tether/server public types", () => {
  it("createTether takes a config and an optional login check, and mounts on a host's server", () => {
    expectTypeOf(createTether).parameter(0).toHaveProperty("config").toEqualTypeOf<TetherConfig>();
    type Result = string | null | LoginResult;
    expectTypeOf<LoginCheck>().toEqualTypeOf<(req: Request) => Promise<Result> | Result>();
    // Additive: a check written against the first contract still type-checks.
    expectTypeOf<(req: Request) => Promise<string | null>>().toExtend<LoginCheck>();
    expectTypeOf<LoginResult>().toEqualTypeOf<
      { userId: string; account?: string } | { refused: true; account?: string }
    >();
    expectTypeOf(createTether).returns.resolves.toEqualTypeOf<Tether>();
    expectTypeOf<Tether["attach"]>().toEqualTypeOf<(server: HttpServer) => TetherServer>();
  });

  it("a host mints tokens for its own users and ends their sessions", () => {
    // `expiresAt` optional (additive): absent, the max age alone caps the session.
    expectTypeOf<HostSessionGrant>().toEqualTypeOf<{ userId: string; sessionKey: string; expiresAt?: number }>();
    expectTypeOf<{ userId: string; sessionKey: string; expiresAt: number }>().toExtend<HostSessionGrant>();
    expectTypeOf<Tether["tokenRouteFor"]>().toEqualTypeOf<(grant: GrantFor) => RequestHandler>();
    expectTypeOf<Tether["issueTokenFor"]>().toEqualTypeOf<
      (req: IncomingMessage, grant: HostSessionGrant) => Promise<{ token: string; expiresAt: number }>
    >();
    expectTypeOf<Tether["endSession"]>().toEqualTypeOf<
      (sessionKey: string, reason?: SessionEndReason) => Promise<void>
    >();
  });

  it("publishing targets a user or a room and resolves with the offset", () => {
    expectTypeOf<Target>().toEqualTypeOf<{ user: string } | { room: string }>();
    // Types only: never called.
    const check = (publisher: Publisher) => {
      expectTypeOf(publisher.publish({ user: "a" }, "x:y", {})).resolves.toEqualTypeOf<string>();
      // An ephemeral event has no offset, and may go to everyone or a room but one socket.
      expectTypeOf(
        publisher.publish({ everyone: true }, "x:y", {}, { ephemeral: true }),
      ).resolves.toEqualTypeOf<undefined>();
      expectTypeOf(
        publisher.publish({ room: "r", except: "socket-id" }, "x:y", {}, { ephemeral: true }),
      ).resolves.toEqualTypeOf<undefined>();
    };
    expectTypeOf(check).toBeFunction();
    expectTypeOf(createPublisher).returns.resolves.toExtend<Publisher>();
  });
});

interface AppEvents {
  server: { "build:log": { line: string }; "build:done": { ok: boolean } };
  client: {
    "chat:send": { payload: { text: string }; result: { id: string } };
    "chat:typing": { payload: { on: boolean } };
  };
}

describe("typed app events (one event map for both ends)", () => {
  it("publish checks the event name and its data against the map", () => {
    const check = async (tether: Tether<AppEvents>, worker: WorkerPublisher<AppEvents>) => {
      await tether.publisher.publish({ user: "alice" }, "build:log", { line: "ok" });
      await worker.publish({ room: "builds" }, "build:done", { ok: true });
      // @ts-expect-error: not an event of the map
      await tether.publisher.publish({ user: "alice" }, "build:lgo", { line: "ok" });
      // @ts-expect-error: wrong data
      await tether.publisher.publish({ user: "alice" }, "build:log", { line: 1 });
    };
    expectTypeOf(check).returns.resolves.toBeVoid();
    expectTypeOf(createPublisher<AppEvents>).returns.resolves.toEqualTypeOf<WorkerPublisher<AppEvents>>();
    expectTypeOf(createTether<AppEvents>).returns.resolves.toEqualTypeOf<Tether<AppEvents>>();
  });

  it("an event marked Ephemeral in the map is published ephemeral only, with its plain data", () => {
    interface WithEphemeral {
      server: { "doc:edit": { text: string }; "doc:typing": Ephemeral<{ userId: string }> };
    }
    const check = async (tether: Tether<WithEphemeral>) => {
      await tether.publisher.publish({ room: "d" }, "doc:typing", { userId: "a" }, { ephemeral: true });
      await tether.publisher.publish({ user: "a" }, "doc:typing", { userId: "a" }, { ephemeral: true });
      await tether.publisher.publish({ room: "d" }, "doc:edit", { text: "x" });
      // @ts-expect-error: an ephemeral event is never stored
      await tether.publisher.publish({ room: "d" }, "doc:typing", { userId: "a" });
      // @ts-expect-error: wrong data
      await tether.publisher.publish({ room: "d" }, "doc:typing", { userId: 1 }, { ephemeral: true });
    };
    expectTypeOf(check).returns.resolves.toBeVoid();
  });

  it("handle types the payload from the schema, the result and the context", () => {
    const check = (tether: Tether<AppEvents>) => {
      tether.handle("chat:send", z.object({ text: z.string() }), (payload, context) => {
        expectTypeOf(payload).toEqualTypeOf<{ text: string }>();
        expectTypeOf(context).toEqualTypeOf<EventContext>();
        expectTypeOf(context).not.toHaveProperty("sid");
        return { id: "m1" };
      });
      tether.handle("chat:typing", v.object({ on: v.boolean() }), async () => {});
      // @ts-expect-error: the result must be the map's
      tether.handle("chat:send", z.object({ text: z.string() }), () => ({ id: 1 }));
      // @ts-expect-error: the schema must produce the map's payload
      tether.handle("chat:send", z.object({ text: z.number() }), () => ({ id: "m1" }));
      // @ts-expect-error: not an event of the map
      tether.handle("chat:sned", z.object({ text: z.string() }), () => ({ id: "m1" }));
    };
    expectTypeOf(check).parameter(0).toEqualTypeOf<Tether<AppEvents>>();
    expectTypeOf<EventContext>().toEqualTypeOf<{
      userId: string;
      socketId: string;
      instance: string;
      signal: AbortSignal;
    }>();
  });

  it("without a map, any publishable name and any schema's output", () => {
    const check = async (tether: Tether) => {
      await tether.publisher.publish({ user: "alice" }, "anything", { any: 1 });
      tether.handle("anything", z.object({ n: z.number() }), (payload) => {
        expectTypeOf(payload).toEqualTypeOf<{ n: number }>();
        return payload.n;
      });
    };
    expectTypeOf(check).parameter(0).toEqualTypeOf<Tether>();
    expectTypeOf<EventAck<number>>().toEqualTypeOf<
      { ok: true; result: number } | { ok: false; error: { code: ErrorCode; message: string } }
    >();
  });
});
