import type { Server as HttpServer, IncomingMessage } from "node:http";
import type { SessionEndReason } from "@tether/shared";
import type { Request } from "express";
import { describe, expectTypeOf, it } from "vitest";
import {
  createPublisher,
  createTether,
  type HostSessionGrant,
  type LoginCheck,
  type LoginResult,
  type Publisher,
  type Target,
  type Tether,
  type TetherConfig,
  type TetherServer,
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
    expectTypeOf<HostSessionGrant>().toEqualTypeOf<{ userId: string; sessionKey: string; expiresAt: number }>();
    expectTypeOf<Tether["issueTokenFor"]>().toEqualTypeOf<
      (req: IncomingMessage, grant: HostSessionGrant) => Promise<{ token: string; expiresAt: number }>
    >();
    expectTypeOf<Tether["endSession"]>().toEqualTypeOf<
      (sessionKey: string, reason?: SessionEndReason) => Promise<void>
    >();
  });

  it("publishing targets a user or a room and resolves with the offset", () => {
    expectTypeOf<Target>().toEqualTypeOf<{ user: string } | { room: string }>();
    expectTypeOf<Publisher["publish"]>().returns.resolves.toEqualTypeOf<string>();
    expectTypeOf(createPublisher).returns.resolves.toExtend<Publisher>();
  });
});
