import { type DemoEvents, ErrorCode, ServerEvent } from "@tether/shared";
import { afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from "vitest";
import type { FetchLike } from "../src/cookies.js";
import type { TetherClientError } from "../src/errors.js";
import {
  TetherClientError as ClientError,
  createTetherClient,
  type TetherClient,
  type TetherClientOptions,
  type TetherState,
  UnauthorizedError,
} from "../src/index.js";
import type { FakeSocket } from "./fake-socket.js";

const created = vi.hoisted(() => ({ sockets: [] as FakeSocket[] }));
vi.mock("socket.io-client", async () => {
  const { FakeSocket } = await import("./fake-socket.js");
  return {
    io: (_url: string, options: ConstructorParameters<typeof FakeSocket>[0]) => {
      const socket = new FakeSocket(options);
      created.sockets.push(socket);
      return socket;
    },
  };
});

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
const wireError = (status: number, code: string, headers: Record<string, string> = {}) =>
  json(status, { error: { code, message: code } }, headers);

/** Lets pending fetches and promise chains run (setImmediate is not faked). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

interface Harness {
  client: TetherClient;
  socket: FakeSocket;
  states: TetherState[];
  errors: TetherClientError[];
  urls: string[];
  /** Answers the next token requests, in order; the last one repeats. */
  tokens: Array<() => Response | Promise<Response>>;
}

function setup(options: Partial<TetherClientOptions> = {}): Harness {
  let n = 0;
  const h: Partial<Harness> & Pick<Harness, "states" | "errors" | "urls" | "tokens"> = {
    states: [],
    errors: [],
    urls: [],
    tokens: [() => json(200, { token: `t${++n}`, expiresAt: Date.now() + 60_000 })],
  };
  const fetch: FetchLike = async (url) => {
    h.urls.push(url);
    if (url.endsWith("/api/auth/logout")) return new Response(null, { status: 204 });
    if (url.endsWith("/api/auth/ws-token")) {
      const reply = h.tokens.length > 1 ? h.tokens.shift() : h.tokens[0];
      if (!reply) throw new Error("no token reply");
      return reply();
    }
    return json(200, { authenticated: true, expiresAt: 1 });
  };
  const client = createTetherClient({
    url: "http://tether.test",
    fetch,
    random: () => 0,
    reconnectBaseDelayMs: 500,
    reconnectMaxDelayMs: 30_000,
    ...options,
    staleAfterMs: options.staleAfterMs ?? 0,
  });
  client.on("state", (state) => h.states.push(state));
  client.on("error", (error) => h.errors.push(error));
  const socket = created.sockets.at(-1);
  if (!socket) throw new Error("no socket created");
  return { ...h, client, socket };
}

const tokenCalls = (h: Harness) => h.urls.filter((u) => u.endsWith("/api/auth/ws-token")).length;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });
});
afterEach(() => {
  vi.useRealTimers();
  created.sockets.length = 0;
});

describe("socket options", () => {
  it("turns socket.io-client's reconnection off and authenticates with a callback", () => {
    const { socket } = setup();
    expect(socket.options).toMatchObject({
      path: "/socket.io/",
      transports: ["websocket", "polling"],
      reconnection: false,
      autoConnect: false,
      withCredentials: true,
    });
    expect(typeof socket.options.auth).toBe("function");
  });

  it("starts closed and does nothing before connect()", () => {
    const h = setup();
    expect(h.client.state).toBe("closed");
    expect(h.socket.connectCalls).toBe(0);
  });
});

describe("types", () => {
  it("types app events from the app's event map, built-ins from ServerToClientEvents, acks from ClientToServerEvents", () => {
    const { client } = setup();
    (client as unknown as TetherClient<DemoEvents>).on("job:progress", (payload) =>
      expectTypeOf(payload.step).toEqualTypeOf<number>(),
    );
    client.on("welcome", (payload) => expectTypeOf(payload.instance).toEqualTypeOf<string>());
    client.on("state", (state) => expectTypeOf(state).toEqualTypeOf<TetherState>());
    expectTypeOf(client.emitWithAck<"echo">).parameters.toEqualTypeOf<["echo", unknown]>();
    expectTypeOf(client.echo).returns.toEqualTypeOf<Promise<unknown>>();
  });
});

describe("tokens", () => {
  it("fetches a fresh token before every connect and reconnect, with the last offset", async () => {
    const h = setup();
    h.client.connect();
    await settle();
    expect(h.socket.handshakes).toEqual([{ token: "t1" }]);
    h.socket.accept();
    expect(h.client.state).toBe("connected");
    h.socket.serverEmit("job:progress", { jobId: "j", step: 1, steps: 2, offset: "5-1" });
    h.socket.drop("transport close");
    expect(h.client.state).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(250);
    await settle();
    expect(h.socket.handshakes).toEqual([{ token: "t1" }, { token: "t2", offset: "5-1", awayMs: 250 }]);
    expect(tokenCalls(h)).toBe(2);
  });

  it("aborts the attempt instead of handshaking when the token request fails", async () => {
    const h = setup();
    h.tokens.unshift(() => wireError(503, ErrorCode.Unavailable));
    h.client.connect();
    await settle();
    expect(h.socket.handshakes).toEqual([]);
    expect(h.socket.disconnectCalls).toBe(1);
    expect(h.errors.map((e) => e.code)).toEqual([ErrorCode.Unavailable]);
  });
});

describe("handshake by session cookie", () => {
  it("is off by default outside a browser, and whenever the app keeps the credential (fetch, getToken, tokenUrl)", async () => {
    const h = setup();
    h.client.connect();
    await settle();
    expect(h.socket.handshakes).toEqual([{ token: "t1" }]);
  });

  it("on: a first connect presents the cookie with no token request; a refused cookie falls back to a token at once, and is not tried again", async () => {
    const h = setup({ cookieHandshake: true, resumeTickets: false });
    h.client.connect();
    await settle();
    expect(h.socket.handshakes).toEqual([{ cookie: true }]);
    expect(tokenCalls(h)).toBe(0);
    // No cookie reached the server (another site, a cookie kept elsewhere): TOKEN_INVALID.
    h.socket.refuse({ code: ErrorCode.TokenInvalid, retryable: true });
    await settle();
    expect(h.socket.handshakes).toEqual([{ cookie: true }, { token: "t1" }]);
    expect(h.errors).toEqual([]);
    h.socket.accept();
    h.socket.drop("transport close");
    await vi.advanceTimersByTimeAsync(250);
    await settle();
    expect(h.socket.handshakes.at(-1)).toMatchObject({ token: "t2" });
    // A new start (after close) tries the cookie again.
    h.client.disconnect();
    h.client.connect();
    await settle();
    expect(h.socket.handshakes.at(-1)).toEqual({ cookie: true });
  });

  it("on: a cookie handshake that works is used for every reconnect without a ticket; other refusals back off as usual", async () => {
    const h = setup({ cookieHandshake: true, resumeTickets: false });
    h.client.connect();
    await settle();
    h.socket.accept();
    h.socket.serverEmit("job:progress", { jobId: "j", step: 1, steps: 2, offset: "5-1" });
    h.socket.drop("transport close");
    await vi.advanceTimersByTimeAsync(250);
    await settle();
    expect(h.socket.handshakes).toEqual([{ cookie: true }, { cookie: true, offset: "5-1", awayMs: 250 }]);
    h.socket.refuse({ code: ErrorCode.RateLimited, retryable: true });
    await settle();
    expect(h.socket.handshakes).toHaveLength(2);
    expect(h.client.state).toBe("reconnecting");
    expect(tokenCalls(h)).toBe(0);
  });
});

describe("session gone → unauthenticated, no retry", () => {
  it("on 401 SESSION_REQUIRED from the token route", async () => {
    const h = setup();
    h.tokens.unshift(() => wireError(401, ErrorCode.SessionRequired));
    h.client.connect();
    await settle();
    expect(h.client.state).toBe("unauthenticated");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(h.socket.connectCalls).toBe(1);
    expect(h.urls.some((u) => u.endsWith("/logout"))).toBe(false);
  });

  it("on a handshake refused with SESSION_EXPIRED", async () => {
    const h = setup();
    h.client.connect();
    await settle();
    h.socket.refuse({ code: ErrorCode.SessionExpired, retryable: false });
    expect(h.client.state).toBe("unauthenticated");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(h.socket.connectCalls).toBe(1);
  });

  it("on session:ended, even when the app removed its own listeners", async () => {
    const h = setup();
    h.client.on("session:ended", () => {});
    h.client.off("session:ended");
    h.client.connect();
    await settle();
    h.socket.accept();
    h.socket.serverEmit("session:ended", { reason: "logout" });
    expect(h.client.state).toBe("unauthenticated");
    expect(h.socket.disconnectCalls).toBe(1);
  });
});

describe("the host's getToken says unauthorized → unauthenticated, no retry", () => {
  for (const [name, make] of [
    ["UnauthorizedError", () => new UnauthorizedError("host session gone")],
    ["a TetherClientError with code UNAUTHORIZED", () => new ClientError({ code: "UNAUTHORIZED", message: "gone" })],
  ] as const) {
    it(`thrown as ${name}`, async () => {
      let calls = 0;
      const h = setup({
        getToken: async () => {
          calls += 1;
          throw make();
        },
      });
      h.client.connect();
      await settle();
      expect(h.client.state).toBe("unauthenticated");
      expect(h.errors.map((e) => [e.code, e.retryable])).toEqual([["UNAUTHORIZED", false]]);
      await vi.advanceTimersByTimeAsync(120_000);
      expect(calls).toBe(1);
      expect(h.socket.handshakes).toEqual([]);
    });
  }

  it("any other getToken failure is retried", async () => {
    let calls = 0;
    const h = setup({
      getToken: async () => {
        calls += 1;
        if (calls === 1) throw new Error("flaky");
        return { token: "host-token" };
      },
    });
    h.client.connect();
    await settle();
    expect(h.client.state).toBe("connecting");
    await vi.advanceTimersByTimeAsync(250);
    await settle();
    expect(h.socket.handshakes).toEqual([{ token: "host-token" }]);
  });
});

describe("logger", () => {
  const capture = () => {
    const lines: string[] = [];
    const write = (level: string) => (message: string, fields?: Record<string, unknown>) =>
      lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
    return {
      lines,
      logger: { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") },
    };
  };

  it("logs state changes, reconnect attempts and refusals from the level asked for", async () => {
    const { lines, logger } = capture();
    const h = setup({ logger });
    h.tokens.unshift(() => wireError(503, "UNAVAILABLE"));
    h.client.connect();
    await settle();
    expect(lines).toEqual([
      'info [tether] state {"from":"closed","to":"connecting"}',
      'warn [tether] connection error {"code":"UNAVAILABLE","message":"UNAVAILABLE","retryable":true}',
      'info [tether] reconnect scheduled {"attempt":1,"delayMs":250}',
    ]);
    await vi.advanceTimersByTimeAsync(250);
    await settle();
    h.socket.refuse({ code: "ORIGIN_FORBIDDEN", retryable: false });
    expect(lines.slice(3)).toEqual([
      'warn [tether] connection error {"code":"ORIGIN_FORBIDDEN","message":"Handshake refused: ORIGIN_FORBIDDEN","retryable":false}',
      'error [tether] gave up reconnecting {"code":"ORIGIN_FORBIDDEN","state":"closed"}',
      'info [tether] state {"from":"connecting","to":"closed"}',
    ]);
  });

  it("writes nothing below its level, and a throwing logger does not break the client", async () => {
    const { lines, logger } = capture();
    const h = setup({
      logger: {
        ...logger,
        warn: () => {
          throw new Error("broken logger");
        },
      },
      logLevel: "warn",
    });
    h.tokens.unshift(() => wireError(503, "UNAVAILABLE"));
    h.client.connect();
    await settle();
    expect(lines).toEqual([]);
    expect(h.client.state).toBe("connecting");
    await vi.advanceTimersByTimeAsync(250);
    await settle();
    h.socket.accept();
    expect(h.client.state).toBe("connected");
  });
});

describe("forbidden origin → closed", () => {
  it("stops and reports the error", async () => {
    const h = setup();
    h.tokens.unshift(() => wireError(403, ErrorCode.OriginForbidden));
    h.client.connect();
    await settle();
    expect(h.client.state).toBe("closed");
    expect(h.errors.map((e) => e.code)).toEqual([ErrorCode.OriginForbidden]);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(h.socket.connectCalls).toBe(1);
  });
});

describe("everything else → retry with backoff", () => {
  it("keeps retrying on 503 with growing delays, then connects", async () => {
    const h = setup();
    h.tokens.unshift(
      () => wireError(503, ErrorCode.Unavailable),
      () => wireError(503, ErrorCode.Unavailable),
      () => Promise.reject(new TypeError("fetch failed")),
    );
    h.client.connect();
    await settle();
    expect(h.socket.connectCalls).toBe(1);
    await vi.advanceTimersByTimeAsync(250); // attempt 0: 500 × 0.5
    await settle();
    expect(h.socket.connectCalls).toBe(2);
    await vi.advanceTimersByTimeAsync(499); // attempt 1: 1000 × 0.5
    expect(h.socket.connectCalls).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(h.socket.connectCalls).toBe(3);
    await vi.advanceTimersByTimeAsync(1000);
    await settle();
    expect(h.socket.handshakes).toHaveLength(1);
    h.socket.accept();
    expect(h.states).toEqual(["connecting", "connected"]);
    expect(h.errors.map((e) => e.code)).toEqual([ErrorCode.Unavailable, ErrorCode.Unavailable, "NETWORK_ERROR"]);
  });

  it("waits Retry-After on 429", async () => {
    const h = setup();
    h.tokens.unshift(() => wireError(429, ErrorCode.RateLimited, { "retry-after": "5" }));
    h.client.connect();
    await settle();
    await vi.advanceTimersByTimeAsync(4_999);
    expect(h.socket.connectCalls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.socket.connectCalls).toBe(2);
  });

  it("a handshake turned away with a retry hint comes back at the hint, not the longer backoff", async () => {
    // Admission control spreads its hints over the backlog (a storm becomes a ramp); the
    // exponential backoff on top of them would keep a refused client away seconds longer.
    const h = setup({ reconnectBaseDelayMs: 4_000 });
    h.client.connect();
    await settle();
    h.socket.refuse({ code: ErrorCode.Unavailable, retryable: true, retryAfterMs: 700 });
    expect(h.client.stats().nextRetryAt).toBe(Date.now() + 700);
    await vi.advanceTimersByTimeAsync(699);
    expect(h.socket.connectCalls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(h.socket.connectCalls).toBe(2);
    // The hinted attempt still counts: a refusal without a hint backs off from attempt 1.
    h.socket.refuse({ code: ErrorCode.Unavailable, retryable: true });
    expect(h.client.stats().nextRetryAt).toBe(Date.now() + 4_000); // 8,000 × 0.5
    h.client.close();
  });

  it("a ticket turned away UNAVAILABLE (not spent) is presented again at the hint, with no token request", async () => {
    const h = setup();
    const last = () => h.socket.handshakes.at(-1);
    /** Connected, handed `ticket`, then dropped: the reconnect presents it. */
    const reconnectWith = async (ticket: string) => {
      h.socket.accept();
      h.socket.serverEmit(ServerEvent.Ticket, { ticket, expiresAt: Date.now() + 60_000 });
      h.socket.drop("transport close");
      await vi.advanceTimersByTimeAsync(250);
      await settle();
      expect(last()).toMatchObject({ ticket });
    };
    /** Refused with `data`, then past its hint. */
    const refuse = async (data: { code: ErrorCode; retryAfterMs?: number }) => {
      h.socket.refuse({ retryable: true, ...data });
      await vi.advanceTimersByTimeAsync(data.retryAfterMs ?? 0);
      await settle();
    };
    h.client.connect();
    await settle();
    await reconnectWith("k1");
    // A busy instance refuses it before any store work: the same ticket, after the hint.
    await refuse({ code: ErrorCode.Unavailable, retryAfterMs: 700 });
    expect(last()).toMatchObject({ ticket: "k1" });
    expect(tokenCalls(h)).toBe(1);
    // Spent after all (the store did it before its reply was lost): a token at once, as for any used ticket.
    await refuse({ code: ErrorCode.TokenInvalid });
    expect(last()).toMatchObject({ token: "t2" });
    // Any other refusal spends it: the next attempt fetches a token.
    await reconnectWith("k2");
    await refuse({ code: ErrorCode.RateLimited, retryAfterMs: 100 });
    expect(last()).toMatchObject({ token: "t3" });
    h.client.close();
  });

  it("retries refusals with TOKEN_INVALID and connect errors without data", async () => {
    const h = setup();
    h.client.connect();
    await settle();
    h.socket.refuse({ code: ErrorCode.TokenInvalid, retryable: true });
    expect(h.client.state).toBe("connecting");
    await vi.advanceTimersByTimeAsync(250);
    await settle();
    h.socket.refuse();
    await vi.advanceTimersByTimeAsync(500);
    await settle();
    expect(h.socket.connectCalls).toBe(3);
    expect(h.socket.handshakes.map((d) => (d as { token: string }).token)).toEqual(["t1", "t2", "t3"]);
  });

  it("resets the backoff after a successful connect", async () => {
    const h = setup();
    h.tokens.unshift(
      () => wireError(503, ErrorCode.Unavailable),
      () => wireError(503, ErrorCode.Unavailable),
    );
    h.client.connect();
    await settle();
    await vi.advanceTimersByTimeAsync(250);
    await settle();
    await vi.advanceTimersByTimeAsync(500);
    await settle();
    h.socket.accept();
    h.socket.drop("ping timeout");
    await vi.advanceTimersByTimeAsync(249);
    expect(h.socket.connectCalls).toBe(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.socket.connectCalls).toBe(4);
  });

  it("reconnectNow() skips the pending delay", async () => {
    const h = setup();
    h.tokens.unshift(() => wireError(503, ErrorCode.Unavailable));
    h.client.connect();
    await settle();
    expect(h.socket.connectCalls).toBe(1);
    h.client.reconnectNow();
    expect(h.socket.connectCalls).toBe(2);
    h.client.reconnectNow(); // an attempt is under way: no-op
    expect(h.socket.connectCalls).toBe(2);
  });
});

describe("offsets", () => {
  it("takes welcome's offset on a first connect only, then the latest event's", async () => {
    const h = setup();
    h.client.connect();
    await settle();
    h.socket.accept();
    h.socket.serverEmit("welcome", { instance: "a", offset: "10-0" });
    expect(h.client.lastOffset).toBe("10-0");
    h.socket.serverEmit("job:done", { jobId: "j", offset: "11-0" });
    h.socket.serverEmit("job:done", { jobId: "j", offset: "9-0" });
    expect(h.client.lastOffset).toBe("11-0");
    h.socket.drop();
    await vi.advanceTimersByTimeAsync(250);
    await settle();
    expect(h.socket.handshakes.at(-1)).toEqual({ token: "t2", offset: "11-0", awayMs: 250 });
    h.socket.accept();
    h.socket.serverEmit("welcome", { instance: "b", offset: "20-0" });
    expect(h.client.lastOffset).toBe("11-0");
    h.socket.serverEmit("recovery", { recovered: false, missed: 3 });
    expect(h.client.lastOffset).toBe("20-0");
  });
});

describe("rewind (a tab sharing the connection saw less)", () => {
  const rewind = (h: Harness, offsets: Record<string, string>) =>
    (h.client as unknown as { rewind(offsets: Record<string, string>): void }).rewind(offsets);

  it("connected: reconnects at once from the older offset", async () => {
    const h = setup();
    h.client.connect();
    await settle();
    h.socket.accept();
    h.socket.serverEmit("job:done", { jobId: "j", offset: "11-0" });
    rewind(h, { "": "5-0" });
    await settle();
    expect(h.socket.handshakes.at(-1)).toMatchObject({ offset: "5-0" });
    expect(h.client.state).toBe("reconnecting");
  });

  it("with a handshake in flight that asked for newer offsets: connects again from the older one once it is up", async () => {
    const h = setup();
    h.client.connect();
    await settle();
    h.socket.accept();
    h.socket.serverEmit("job:done", { jobId: "j", offset: "11-0" });
    h.socket.drop();
    await vi.advanceTimersByTimeAsync(250);
    await settle();
    expect(h.socket.handshakes.at(-1)).toMatchObject({ offset: "11-0" });
    rewind(h, { "": "5-0" });
    const sent = h.socket.handshakes.length;
    h.socket.accept();
    await settle();
    expect(h.socket.handshakes.length).toBe(sent + 1);
    expect(h.socket.handshakes.at(-1)).toMatchObject({ offset: "5-0" });
  });
});

describe("app events", () => {
  it("share the duplicate filter and the offsets with the built-in ones, per stream", async () => {
    const h = setup();
    const client = h.client as unknown as TetherClient<{ server: { "build:log": { line: string } } }>;
    const lines: string[] = [];
    client.on("build:log", ({ line, room }) => lines.push(room ? `${room}:${line}` : line));
    client.connect();
    await settle();
    h.socket.accept();
    h.socket.serverEmit("welcome", { instance: "a", offset: "10-0", rooms: { ci: "3-0" } });
    h.socket.serverEmit("build:log", { line: "one", offset: "11-0" });
    h.socket.serverEmit("build:log", { line: "one again", offset: "11-0" });
    h.socket.serverEmit("job:done", { jobId: "j", offset: "12-0" });
    h.socket.serverEmit("build:log", { line: "replayed", offset: "12-0" });
    h.socket.serverEmit("build:log", { line: "two", room: "ci", offset: "4-0" });
    h.socket.serverEmit("build:log", { line: "two again", room: "ci", offset: "4-0" });
    expect(lines).toEqual(["one", "ci:two"]);
    expect(client.lastOffset).toBe("12-0");
    expect(client.roomOffsets).toEqual({ ci: "4-0" });
    h.socket.drop();
    await vi.advanceTimersByTimeAsync(250);
    await settle();
    expect(h.socket.handshakes.at(-1)).toEqual({ token: "t2", offset: "12-0", rooms: { ci: "4-0" }, awayMs: 250 });
  });

  it("emitWithAck unwraps an app event's acknowledgement: its result, or its error code thrown", async () => {
    const h = setup();
    h.client.connect();
    await settle();
    h.socket.accept();
    // The fake server acknowledges with the payload: send the acknowledgement to unwrap.
    await expect(h.client.emitWithAck("chat:send", { ok: true, result: { id: "m1" } })).resolves.toEqual({ id: "m1" });
    await expect(
      h.client.emitWithAck("chat:send", { ok: false, error: { code: "RATE_LIMITED", message: "slow down" } }),
    ).rejects.toMatchObject({ code: "RATE_LIMITED", message: "slow down", retryable: true });
    await expect(h.client.emitWithAck("chat:send", "not an ack")).rejects.toMatchObject({ code: "INTERNAL" });
    // echo answers with its payload, even one that looks like an acknowledgement.
    await expect(h.client.echo({ ok: false })).resolves.toEqual({ ok: false });
  });
});

describe("listeners", () => {
  it("on() and once() return the function that removes that one registration", async () => {
    const h = setup();
    const seen: string[] = [];
    const log = (p: { offset: string }) => seen.push(p.offset);
    const client = h.client as unknown as TetherClient<{ server: { a: object; b: object } }>;
    const stopA = client.on("a", log);
    client.on("b", log);
    const stopOnce = client.once("b", () => seen.push("once"));
    stopOnce();
    client.connect();
    await settle();
    h.socket.accept();
    h.socket.serverEmit("a", { offset: "1-0" });
    h.socket.serverEmit("b", { offset: "2-0" });
    // One function on two events: removing it from the first leaves the second.
    stopA();
    stopA();
    h.socket.serverEmit("a", { offset: "3-0" });
    h.socket.serverEmit("b", { offset: "4-0" });
    client.off("b", log);
    h.socket.serverEmit("b", { offset: "5-0" });
    expect(seen).toEqual(["1-0", "2-0", "4-0"]);
  });

  it("onAny() sees every server event with its name, once, and untyped on(name) any app event", async () => {
    const h = setup();
    const any: string[] = [];
    const paid: unknown[] = [];
    const stop = h.client.onAny((event, payload) => any.push(`${event}@${(payload as { offset?: string }).offset}`));
    h.client.on("invoice:paid", (payload) => paid.push(payload.invoiceId));
    h.client.connect();
    await settle();
    h.socket.accept();
    h.socket.serverEmit("welcome", { instance: "a", offset: "1-0" });
    h.socket.serverEmit("invoice:paid", { invoiceId: "in_1", offset: "2-0" });
    h.socket.serverEmit("invoice:paid", { invoiceId: "in_1", offset: "2-0" });
    stop();
    h.socket.serverEmit("invoice:paid", { invoiceId: "in_2", offset: "3-0" });
    expect(any).toEqual(["welcome@1-0", "invoice:paid@2-0"]);
    expect(paid).toEqual(["in_1", "in_2"]);
  });

  it("off(event, fn) removes a function from that event only", async () => {
    const h = setup();
    const seen: string[] = [];
    const log = (p: { offset: string }) => seen.push(p.offset);
    const client = h.client as unknown as TetherClient<{ server: { a: object; b: object } }>;
    client.on("a", log);
    client.on("b", log);
    client.off("a", log);
    client.connect();
    await settle();
    h.socket.accept();
    h.socket.serverEmit("a", { offset: "1-0" });
    h.socket.serverEmit("b", { offset: "2-0" });
    client.off("b", log);
    h.socket.serverEmit("b", { offset: "3-0" });
    expect(seen).toEqual(["2-0"]);
  });
});

describe("closing", () => {
  it("logout() closes without flashing unauthenticated, then calls the route", async () => {
    const h = setup();
    h.client.connect();
    await settle();
    h.socket.accept();
    await h.client.logout();
    expect(h.states).toEqual(["connecting", "connected", "closed"]);
    expect(h.urls.at(-1)).toBe("http://tether.test/api/auth/logout");
  });

  it("close() stops retrying and drops a late token", async () => {
    const h = setup();
    let release: (r: Response) => void = () => {};
    h.tokens.unshift(() => new Promise<Response>((resolve) => (release = resolve)));
    h.client.connect();
    await settle();
    h.client.close();
    release(json(200, { token: "late", expiresAt: 1 }));
    await settle();
    expect(h.socket.handshakes).toEqual([]);
    expect(h.client.state).toBe("closed");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(h.socket.connectCalls).toBe(1);
  });

  it("rejects echo when closed", async () => {
    const h = setup();
    await expect(h.client.echo("x")).rejects.toMatchObject({ code: "NOT_CONNECTED" });
  });
});

describe("stale connection", () => {
  it("forces a reconnect when timers stalled past staleAfterMs", async () => {
    const h = setup({ staleAfterMs: 45_000 });
    h.client.connect();
    await settle();
    h.socket.accept();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(h.socket.connectCalls).toBe(1);
    vi.setSystemTime(Date.now() + 120_000); // the machine slept; no timer fired
    await vi.advanceTimersByTimeAsync(5_000);
    await settle();
    expect(h.socket.connectCalls).toBe(2);
    expect(h.client.state).toBe("reconnecting");
    expect(h.socket.handshakes).toHaveLength(2);
    h.client.close();
  });
});

describe("recoveries inside welcome", () => {
  it("every handshake asks for them; a welcome carrying them is that welcome, then one recovery each, counted", async () => {
    const h = setup();
    const seen: [string, unknown][] = [];
    h.client.on("welcome", (welcome) => seen.push(["welcome", welcome]));
    h.client.on("recovery", (report) => seen.push(["recovery", report]));
    h.client.connect();
    await settle();
    h.socket.accept();
    h.socket.serverEmit("welcome", {
      instance: "a",
      offset: "10-0",
      rooms: { ci: "3-0" },
      recovery: [
        { recovered: true, missed: 0 },
        { recovered: true, missed: 0, room: "ci" },
      ],
    });
    expect(seen).toEqual([
      ["welcome", { instance: "a", offset: "10-0", rooms: { ci: "3-0" } }],
      ["recovery", { recovered: true, missed: 0 }],
      ["recovery", { recovered: true, missed: 0, room: "ci" }],
    ]);
    expect(h.client.stats()).toMatchObject({ replaySizes: [0, 0], recoveries: { recovered: 2 } });
    // The offsets came from the welcome: the next handshake resumes from them.
    h.socket.drop();
    await vi.advanceTimersByTimeAsync(1_000);
    await settle();
    expect(h.socket.handshakes.at(-1)).toMatchObject({ offset: "10-0", rooms: { ci: "3-0" } });
    expect(h.socket.recoveryInWelcome).toEqual([true, true]);
    h.client.close();
  });
});

describe("stats", () => {
  it("counts connects and losses, times each reconnect, records recoveries by outcome, and shows the pending retry", async () => {
    const h = setup();
    h.client.connect();
    await settle();
    h.socket.accept();
    expect(h.client.stats()).toMatchObject({ mode: "tab", tabs: 1, connects: 1, disconnects: 0, reconnectTimesMs: [] });
    h.socket.drop();
    const retry = h.client.stats().nextRetryAt;
    // The first retry's delay: half the base delay with this jitter.
    expect(retry).toBe(Date.now() + 250);
    expect(h.client.stats().awaySince).toBe(Date.now());
    await vi.advanceTimersByTimeAsync(250);
    await settle();
    h.socket.accept();
    h.socket.serverEmit("recovery", { recovered: true, missed: 3 });
    h.socket.serverEmit("recovery", { recovered: false, missed: 0, room: "r", reason: "trimmed" });
    h.socket.serverEmit("recovery", { recovered: false, missed: 0 });
    expect(h.client.stats()).toMatchObject({
      connects: 2,
      disconnects: 1,
      reconnectTimesMs: [250],
      replaySizes: [3],
      recoveries: { recovered: 1, failed: { trimmed: 1, unknown: 1 } },
      nextRetryAt: undefined,
      awaySince: undefined,
    });
  });
});
