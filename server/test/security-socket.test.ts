import { ErrorCode } from "@tether/shared";
import { connectRaw, HandshakeRefused, login, refusal, type TestSession, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { openRaw, openRawConnected, type RawSocket } from "@tether/testkit/raw";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "socket-security-api-key-0123456789";

describe("hostile sockets: refused clearly, nothing crashes, others unaffected", () => {
  let redis: TestRedis;
  let server: TestInstance;
  let session: TestSession;
  let bystander: Awaited<ReturnType<typeof connectRaw>>;

  beforeAll(async () => {
    redis = await startRedis();
    server = await startInstance({
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_SOCKET_EVENTS_PER_SECOND: "20",
      TETHER_MAX_SOCKETS_PER_SESSION: "3",
      // Liveness is not under test here: the bystander must not be dropped for a ping late under fuzzing load.
      TETHER_PING_INTERVAL: "5s",
      TETHER_PING_TIMEOUT: "5s",
    });
    session = await login(server.url, API_KEY);
    bystander = await connectRaw(server.url, { token: await wsToken(server.url, await login(server.url, API_KEY)) });
  });

  afterAll(async () => {
    bystander?.close();
    await server?.kill();
    await redis?.close();
  });

  /** The bystander still gets answers, and the server still serves. */
  async function expectUnaffected() {
    expect(bystander.connected).toBe(true);
    expect(await bystander.timeout(5_000).emitWithAck("echo", "ok")).toBe("ok");
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  }

  it("the same token used twice in parallel: exactly one handshake succeeds", async () => {
    for (let round = 0; round < 5; round++) {
      const token = await wsToken(server.url, session);
      const results = await Promise.allSettled([connectRaw(server.url, { token }), connectRaw(server.url, { token })]);
      const connected = results.filter((r) => r.status === "fulfilled");
      const refused = results.filter((r) => r.status === "rejected");
      expect(connected).toHaveLength(1);
      expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({ data: { code: ErrorCode.TokenInvalid } });
      for (const r of connected) (r as PromiseFulfilledResult<{ close(): void }>).value.close();
    }
  });

  it("forged, empty, huge and non-string tokens get a clear refusal (expired ones: handshake.test.ts)", async () => {
    const forged = "A".repeat(43);
    for (const token of [forged, "", 42, ["x"], { $ne: null }, null, "x".repeat(50_000)]) {
      expect((await refusal(server.url, { token })).data).toEqual({ code: ErrorCode.TokenInvalid, retryable: true });
    }
    for (const auth of [undefined, 7, { token: undefined }]) {
      expect((await refusal(server.url, auth)).data?.code).toBe(ErrorCode.TokenInvalid);
    }
    await expectUnaffected();
  });

  it("a handshake over the message size limit is cut off, and the server keeps serving", async () => {
    const raw = await openRaw(server.url);
    raw.send(`40${JSON.stringify({ token: "x".repeat(1_000_000) })}`);
    await raw.closed;
    await expectUnaffected();
  });

  it("known-bad packets close only the offending socket", async () => {
    const packets = [
      '442["error"]',
      '42[{"toString":"foo"}]',
      '4451-["x",{"_placeholder":true,"num":"splice"}]',
      '42["echo",',
      "4",
      "49",
      '42["__proto__",{}]',
      '40"token-as-a-string"',
      `42["echo","${"y".repeat(70_000)}"]`,
    ];
    for (const packet of packets) {
      const raw = await openRawConnected(server.url, { token: await wsToken(server.url, session) });
      raw.send(packet);
      // Either the server closes it, or it ignores the packet and keeps working: never a crash.
      await Promise.race([raw.closed, waitFor("the socket to survive", () => raw.isOpen())]);
      raw.close();
      await expectUnaffected();
    }
  });

  it("a bogus transport or protocol version in the query never opens a session", async () => {
    for (const query of [
      "EIO=4&transport=__proto__",
      "EIO=4&transport=constructor",
      "EIO=3&transport=websocket",
      "transport=websocket",
    ]) {
      await expect(openRaw(server.url, query)).rejects.toThrow();
    }
    await expectUnaffected();
  });

  it("unknown events and bad arguments are refused with an error ack; a flood gets the socket disconnected", async () => {
    const socket = await connectRaw(server.url, { token: await wsToken(server.url, session) });
    expect(await socket.timeout(5_000).emitWithAck("not-an-event", 1)).toMatchObject({
      error: { code: ErrorCode.InvalidInput },
    });
    expect(await socket.timeout(5_000).emitWithAck("echo", 1, 2)).toMatchObject({
      error: { code: ErrorCode.InvalidInput },
    });
    const disconnected = new Promise((resolve) => socket.once("disconnect", resolve));
    for (let i = 0; i < 500; i++) socket.emit("echo", i, () => {});
    expect(await disconnected).toBe("io server disconnect");
    await expectUnaffected();
  });

  it("a session may hold only so many sockets per instance; the next is told to retry later", async () => {
    const own = await login(server.url, API_KEY);
    const sockets = [];
    for (let i = 0; i < 3; i++) sockets.push(await connectRaw(server.url, { token: await wsToken(server.url, own) }));
    const refused = await refusal(server.url, { token: await wsToken(server.url, own) });
    expect(refused.data).toEqual({ code: ErrorCode.RateLimited, retryable: true });
    sockets[0]?.close();
    await waitFor("a free slot", async () => {
      try {
        (await connectRaw(server.url, { token: await wsToken(server.url, own) })).close();
        return true;
      } catch (err) {
        if (err instanceof HandshakeRefused) return false;
        throw err;
      }
    });
    for (const s of sockets) s.close();
  });

  it("a few thousand random and mutated handshakes: no crash, every refusal has a code", async () => {
    const valid = { token: await wsToken(server.url, session), offset: "1-0", rooms: { a: "1-0" } };
    const values: unknown[] = [
      null,
      true,
      0,
      -1,
      1e308,
      "",
      "0-0",
      "🦄",
      [],
      {},
      { toString: "x" },
      "x".repeat(300),
      [[[]]],
    ];
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)] as T;
    const raws: RawSocket[] = [];
    for (let i = 0; i < 2_000; i++) {
      const mutated: Record<string, unknown> = { ...valid };
      mutated[pick(["token", "offset", "rooms", "__proto__", "constructor", "x"])] = pick(values);
      if (i % 400 === 0) raws.push(await openRaw(server.url));
      const raw = raws.at(-1) as RawSocket;
      if (raw.isOpen()) raw.send(`40${JSON.stringify(mutated)}`);
    }
    for (const raw of raws) raw.close();
    for (let i = 0; i < 200; i++) {
      const auth: Record<string, unknown> = { token: pick(values), offset: pick(values), rooms: pick(values) };
      const refused = await refusal(server.url, auth);
      expect(refused.data?.code).toBeTypeOf("string");
    }
    await expectUnaffected();
  });
});
