import type {
  ErrorCode,
  JobProgressPayload,
  RecoveryPayload,
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

  it("server events reach listeners with their payload types", () => {
    const on = (client: TetherClient) => {
      client.on("welcome", (w) => expectTypeOf(w).toEqualTypeOf<WelcomePayload>());
      client.on("job:progress", (p) => expectTypeOf(p).toEqualTypeOf<JobProgressPayload>());
      client.on("recovery", (r) => expectTypeOf(r).toEqualTypeOf<RecoveryPayload>());
      client.on("session:ended", (e) => expectTypeOf(e).toEqualTypeOf<SessionEndedPayload>());
      client.on("state", (s) => expectTypeOf(s).toEqualTypeOf<TetherState>());
      client.on("error", (e) => expectTypeOf(e).toEqualTypeOf<TetherClientError>());
    };
    expectTypeOf(on).parameter(0).toEqualTypeOf<TetherClient>();
  });

  it("errors carry a wire code and whether to retry", () => {
    expectTypeOf<TetherClientError["retryable"]>().toEqualTypeOf<boolean>();
    expectTypeOf<ErrorCode>().toExtend<TetherClientError["code"]>();
    expectTypeOf<WsTokenResponse>().toEqualTypeOf<{ token: string; expiresAt: number }>();
  });
});
