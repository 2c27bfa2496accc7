import { ErrorCode } from "@tether/shared";
import { connectedClient, type TestClient } from "@tether/testkit/client";
import { connectRaw, login, post, refusal, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { idleFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "resume-ticket-test-api-key-0123456789";
const TICKET_TTL_MS = 1_500;

/** Resume tickets: a reconnect without an HTTP request, as safe as a token. */
describe("resume tickets", () => {
  let redis: TestRedis;
  let a: TestInstance;
  let b: TestInstance;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const env = { REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_RESUME_TICKET_TTL: `${TICKET_TTL_MS}ms` };
    [a, b] = await Promise.all([startInstance(env), startInstance(env)]);
  });

  afterAll(async () => {
    for (const t of clients) t.client.close();
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.close();
  });

  it("50 reconnects need one token in all: every other handshake presents the pushed ticket", async () => {
    const t = await connectedClient(a.url, API_KEY, clients);
    for (let i = 2; i <= 51; i++) {
      t.client.socket.io.engine.close();
      await t.welcomed(i);
    }
    expect(t.tokens).toHaveLength(1);
    expect(t.states).not.toContain("unauthenticated");
  });

  it("a ticket from one instance opens a socket on another, once; the second try is TOKEN_INVALID (retryable)", async () => {
    const session = await login(a.url, API_KEY);
    const first = await connectRaw(a.url, { token: await wsToken(a.url, session) });
    const ticket = first.welcome.ticket;
    expect(typeof ticket).toBe("string");
    first.close();
    const resumed = await connectRaw(b.url, { ticket });
    expect(resumed.welcome.instance).not.toBe(first.welcome.instance);
    resumed.close();
    expect((await refusal(b.url, { ticket })).data).toEqual({ code: ErrorCode.TokenInvalid, retryable: true });
  });

  it("logout ends what a ticket can do: SESSION_EXPIRED, not retryable", async () => {
    const session = await login(a.url, API_KEY);
    const socket = await connectRaw(a.url, { token: await wsToken(a.url, session) });
    const ticket = socket.welcome.ticket;
    expect((await post(`${a.url}/api/auth/logout`, undefined, { cookie: session.cookie })).status).toBe(204);
    expect((await refusal(b.url, { ticket })).data).toEqual({ code: ErrorCode.SessionExpired, retryable: false });
  });

  it("forged, tampered and expired tickets are TOKEN_INVALID", async () => {
    const session = await login(a.url, API_KEY);
    const socket = await connectRaw(a.url, { token: await wsToken(a.url, session) });
    const ticket = socket.welcome.ticket ?? "";
    socket.close();
    const flipped = `${ticket.slice(0, 20)}${ticket[20] === "A" ? "B" : "A"}${ticket.slice(21)}`;
    for (const bad of ["x".repeat(60), flipped, 42, { $ne: "" }]) {
      expect((await refusal(a.url, { ticket: bad })).data?.code).toBe(ErrorCode.TokenInvalid);
    }
    // The scenario is time: the ticket's life passes.
    await idleFor(TICKET_TTL_MS + 100);
    expect((await refusal(a.url, { ticket })).data?.code).toBe(ErrorCode.TokenInvalid);
  });

  it("a ticket refused (someone used it first): the client fetches a token at once and stays logged in", async () => {
    const t = await connectedClient(a.url, API_KEY, clients);
    // Spend the ticket the client holds; a refresh pushed meanwhile (a busy box) is spent too.
    // The last check and the close run in one tick, so no newer ticket can arrive between them.
    let spent: string | undefined;
    while (spent !== t.latestTicket()) {
      spent = t.latestTicket();
      (await connectRaw(b.url, { ticket: spent })).close();
    }
    t.client.socket.io.engine.close();
    await t.welcomed(2);
    expect(t.tokens).toHaveLength(2);
    expect(t.states).not.toContain("unauthenticated");
  });
});
