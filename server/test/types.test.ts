import type { Server as HttpServer } from "node:http";
import type { Request } from "express";
import { describe, expectTypeOf, it } from "vitest";
import {
  createPublisher,
  createTether,
  type LoginCheck,
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
    expectTypeOf<LoginCheck>().toEqualTypeOf<(req: Request) => Promise<string | null> | string | null>();
    expectTypeOf(createTether).returns.resolves.toEqualTypeOf<Tether>();
    expectTypeOf<Tether["attach"]>().toEqualTypeOf<(server: HttpServer) => TetherServer>();
  });

  it("publishing targets a user or a room and resolves with the offset", () => {
    expectTypeOf<Target>().toEqualTypeOf<{ user: string } | { room: string }>();
    expectTypeOf<Publisher["publish"]>().returns.resolves.toEqualTypeOf<string>();
    expectTypeOf(createPublisher).returns.resolves.toExtend<Publisher>();
  });
});
