import { resolve } from "node:path";
import { ErrorCode } from "@tether/shared";
import { startClient, type TestClient } from "@tether/testkit/client";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { createPublisher, loadConfig, type WorkerPublisher } from "../src/index.js";
import type { TestEvents } from "./fixtures/events.js";

const API_KEY = "typed-events-test-api-key-0123456789";
const HOST = resolve(import.meta.dirname, "fixtures/events-host.ts");
/** Low limits so a flood is short: a burst is sent within one second, one limiter window. */
const SOCKET_LIMIT = 10;
const SESSION_LIMIT = 15;

/**
 * Client → server events end to end: a host app's handlers (zod and valibot
 * schemas) on two instances over real Redis, driven by the typed SDK.
 */
describe("typed client → server events on two instances", () => {
  let redis: TestRedis;
  let a: TestInstance;
  let b: TestInstance;
  let publisher: WorkerPublisher<TestEvents>;
  const opened: TestClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const env = {
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_SOCKET_EVENTS_PER_SECOND: String(SOCKET_LIMIT),
      TETHER_SESSION_EVENTS_PER_SECOND: String(SESSION_LIMIT),
    };
    [a, b] = await Promise.all([startInstance(env, { main: HOST }), startInstance(env, { main: HOST })]);
    publisher = await createPublisher<TestEvents>(loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent" }));
  });

  afterAll(async () => {
    for (const t of opened) t.client.close();
    await publisher?.close();
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.close();
  });

  /** A typed client of a fresh login session (its own rate-limit budget), logged in on A, connected to B. */
  async function clientOnB(
    jar?: TestClient["jar"],
  ): Promise<TestClient & { typed: import("@tether/client").TetherClient<TestEvents> }> {
    const t = startClient(b.url, jar ? { jar } : {});
    opened.push(t);
    if (!jar) {
      // The session lives in Redis: a login on A is valid on B.
      const res = await fetch(`${a.url}/api/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ apiKey: API_KEY }),
      });
      const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
      await t.jar.setCookie(cookie, b.url);
    }
    t.client.connect();
    await t.welcomed(1);
    return Object.assign(t, { typed: t.client as unknown as import("@tether/client").TetherClient<TestEvents> });
  }

  const calls = async (t: { typed: import("@tether/client").TetherClient<TestEvents> }, event: string) =>
    (await t.typed.emitWithAck("test:calls", {}))[event] ?? 0;

  it("a handled event sent through B gets its handler's typed result, with the socket's identity (no session id)", async () => {
    const t = await clientOnB();
    const result = await t.typed.emitWithAck("chat:send", { text: "hello" });
    expectTypeOf(result.id).toEqualTypeOf<string>();
    expect(result).toMatchObject({ text: "hello", by: "admin" });
    const context = result.context as Record<string, unknown>;
    // The abort signal arrives as an empty object: it is not data, and the session id is never there.
    expect(Object.keys(context).sort()).toEqual(["instance", "signal", "socketId", "userId"]);
    expect(context.socketId).toBe(t.client.socket.id);
    expect(result.instance).toBe(t.welcomes[0]?.instance);
  });

  it("an invalid payload is refused before the handler: INVALID_INPUT, and the handler never ran", async () => {
    const t = await clientOnB();
    const before = await calls(t, "chat:send");
    const loose = t.client as unknown as { emitWithAck(event: string, ...args: unknown[]): Promise<unknown> };
    await expect(loose.emitWithAck("chat:send", { text: 42 })).rejects.toMatchObject({
      code: ErrorCode.InvalidInput,
      message: expect.stringContaining("text"),
    });
    await expect(loose.emitWithAck("chat:send", { text: "" })).rejects.toMatchObject({ code: ErrorCode.InvalidInput });
    await expect(loose.emitWithAck("chat:edit", { id: 1 })).rejects.toMatchObject({ code: ErrorCode.InvalidInput });
    await expect(loose.emitWithAck("chat:send", { text: "a" }, "extra")).rejects.toMatchObject({
      code: ErrorCode.InvalidInput,
    });
    expect(await calls(t, "chat:send")).toBe(before);
    expect(await calls(t, "chat:edit")).toBe(0);
  });

  it("an unknown event is still refused; the socket keeps working", async () => {
    const t = await clientOnB();
    const loose = t.client as unknown as { emitWithAck(event: string, ...args: unknown[]): Promise<unknown> };
    await expect(loose.emitWithAck("chat:delete", { id: "m1" })).rejects.toMatchObject({
      code: ErrorCode.InvalidInput,
      message: expect.stringContaining("unknown event"),
    });
    expect(await t.client.echo("still here")).toBe("still here");
  });

  it("a handler's TetherError reaches the client with its code; any other error is INTERNAL without its message", async () => {
    const t = await clientOnB();
    await expect(t.typed.emitWithAck("chat:edit", { id: "missing", text: "x" })).rejects.toMatchObject({
      code: ErrorCode.NotFound,
      message: "No message missing.",
    });
    const internal = await t.typed.emitWithAck("chat:edit", { id: "m1", text: "x" }).catch((err: unknown) => err);
    expect(internal).toMatchObject({ code: ErrorCode.Internal, message: "Internal error." });
    expect(JSON.stringify(internal)).not.toContain("db-secret-host");
    expect(String((internal as Error).stack)).not.toContain("db-secret-host");
    expect(t.client.state).toBe("connected");
  });

  it("a flood from one socket is limited per socket", async () => {
    const t = await clientOnB();
    const replies = await Promise.allSettled(
      Array.from({ length: SOCKET_LIMIT + 4 }, (_, i) => t.typed.emitWithAck("chat:send", { text: `flood ${i}` })),
    );
    const limited = replies.filter(
      (r) => r.status === "rejected" && (r.reason as { code?: string }).code === ErrorCode.RateLimited,
    );
    expect(replies.filter((r) => r.status === "fulfilled")).toHaveLength(SOCKET_LIMIT);
    expect(limited).toHaveLength(4);
  });

  it("two sockets of one session, each under its own limit, are limited per session", async () => {
    const first = await clientOnB();
    const second = await clientOnB(first.jar);
    const each = SOCKET_LIMIT - 1;
    const replies = await Promise.allSettled(
      [first, second].flatMap((t) =>
        Array.from({ length: each }, (_, i) => t.typed.emitWithAck("chat:send", { text: `tab flood ${i}` })),
      ),
    );
    const limited = replies.filter(
      (r) => r.status === "rejected" && (r.reason as { code?: string }).code === ErrorCode.RateLimited,
    );
    expect(replies.filter((r) => r.status === "fulfilled")).toHaveLength(SESSION_LIMIT);
    expect(limited).toHaveLength(2 * each - SESSION_LIMIT);
  });

  it("a typed publish from a worker reaches a typed listener with its offset", async () => {
    const t = await clientOnB();
    const seen: Array<{ id: string; text: string; offset: string }> = [];
    t.typed.on("chat:message", (message) => seen.push(message));
    const offset = await publisher.publish({ user: "admin" }, "chat:message", { id: "m9", text: "hi" });
    await waitFor("the published message", () => seen.length === 1);
    expect(seen[0]).toEqual({ id: "m9", text: "hi", offset });
  });
});
