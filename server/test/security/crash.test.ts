import { resolve } from "node:path";
import { ErrorCode } from "@tether/shared";
import { connectRaw, login, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { openRawConnected, type RawSocket } from "@tether/testkit/raw";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "crash-test-api-key-0123456789abcdef";
/** Refused events allowed per socket per 2 s window in this suite. */
const REFUSALS = 12;
const HOST = resolve(import.meta.dirname, "../fixtures/hostile-host.ts");

/** `[[[…0…]]]`, `depth` arrays deep, as JSON text (never built as a value: the test's own encoder would overflow). */
const nested = (depth: number) => `${"[".repeat(depth)}0${"]".repeat(depth)}`;

/**
 * One message must not end an instance (issue 18, items 1 and 2): payloads deep
 * enough to overflow Socket.IO's recursive encoder, and handler results it cannot
 * encode, each answered with a typed error while a bystander keeps its socket.
 * The default limits are on.
 */
describe("no message ends an instance", () => {
  let redis: TestRedis;
  let server: TestInstance;
  let bystander: WelcomedSocket;
  let attacker: RawSocket;
  let ackId = 0;

  beforeAll(async () => {
    redis = await startRedis();
    server = await startInstance(
      // A short refusal window, so the test of its reset takes seconds (the default is 20/1m).
      { REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_RATE_LIMIT_REFUSED_EVENTS: `${REFUSALS}/2s` },
      { main: HOST },
    );
    bystander = await connectRaw(server.url, { token: await wsToken(server.url, await login(server.url, API_KEY)) });
    attacker = await openRawConnected(server.url, {
      token: await wsToken(server.url, await login(server.url, API_KEY)),
    });
  });

  afterAll(async () => {
    bystander?.close();
    attacker?.close();
    await server?.kill();
    await redis?.close();
  });

  /** Sends `["event", <payload JSON>]` with an ack id over the raw socket; resolves with the ack's first argument. */
  async function call(event: string, payloadJson: string): Promise<unknown> {
    const id = ++ackId;
    const before = attacker.frames.length;
    attacker.send(`42${id}["${event}",${payloadJson}]`);
    const frame = await waitFor(`the ack of ${event} #${id}`, () =>
      attacker.frames.slice(before).find((f) => f.startsWith(`43${id}[`)),
    );
    return (JSON.parse(frame.slice(`43${id}`.length)) as unknown[])[0];
  }

  async function expectAlive(): Promise<void> {
    expect(server.process.exitCode).toBeNull();
    expect(bystander.connected).toBe(true);
    expect(await bystander.timeout(5_000).emitWithAck("echo", "still here")).toBe("still here");
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  }

  it("echo with an array nested 7,000 deep (14 KB, under the message cap): INVALID_INPUT, the instance lives", async () => {
    for (const depth of [5_400, 7_000, 30_000]) {
      expect(await call("echo", nested(depth))).toMatchObject({ ok: false, error: { code: ErrorCode.InvalidInput } });
    }
    await expectAlive();
  });

  it("deep payloads to every built-in event and to an app handler: refused before anything walks them", async () => {
    const deep = nested(10_000);
    for (const [event, payload] of [
      ["room:join", `{"room":"r","offset":${deep}}`],
      ["room:leave", `{"room":${deep}}`],
      ["room:members", deep],
      ["doc:save", `{"doc":${deep}}`],
      ["no:such:event", deep],
    ] as const) {
      expect(await call(event, payload)).toMatchObject({ ok: false, error: { code: ErrorCode.InvalidInput } });
    }
    await expectAlive();
  });

  it("a payload at the depth bound is served; one level more is refused", async () => {
    // The bound is 32 levels of payload (TETHER_MAX_PAYLOAD_DEPTH's default).
    expect(await call("echo", nested(32))).toEqual(JSON.parse(nested(32)));
    expect(await call("echo", nested(33))).toMatchObject({ ok: false, error: { code: ErrorCode.InvalidInput } });
    expect(await call("doc:save", `{"doc":${nested(31)}}`)).toEqual({
      ok: true,
      result: { saved: JSON.parse(nested(31)) },
    });
  });

  it("a handler result Socket.IO cannot encode (a BigInt, nested 10,000 deep): INTERNAL, the instance lives", async () => {
    expect(await call("db:id", "{}")).toEqual({
      ok: false,
      error: { code: ErrorCode.Internal, message: "Internal error." },
    });
    expect(await call("deep:result", '{"depth":10000}')).toMatchObject({
      ok: false,
      error: { code: ErrorCode.Internal },
    });
    expect(await call("deep:result", '{"depth":100}')).toMatchObject({ ok: true });
    await expectAlive();
  });

  it("refused events over a long life do not disconnect (the count is a rate); a burst of them does", async () => {
    const socket = await connectRaw(server.url, { token: await wsToken(server.url, await login(server.url, API_KEY)) });
    try {
      // Three windows of 8 refusals: 24 in the socket's life, more than 20 (the count that once never reset).
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 8; i++) {
          expect(await socket.timeout(5_000).emitWithAck("no:such:event", {})).toMatchObject({ ok: false });
        }
        expect(socket.connected).toBe(true);
        // The limiter's window began at or before this round's first refusal: two seconds after its
        // last one, the next round starts a window of its own, however slowly this one went.
        const windowEnds = Date.now() + 2_100;
        await waitFor("the refusal window to pass", () => Date.now() > windowEnds, { timeoutMs: 5_000 });
      }
      for (let i = 0; i <= REFUSALS; i++) socket.emit("no:such:event", {});
      await waitFor("the abusive socket to be disconnected", () => !socket.connected);
    } finally {
      socket.close();
    }
    await expectAlive();
  });
});
