import { resolve } from "node:path";
import { ErrorCode } from "@tether/shared";
import { connectRaw, login, type TestSession, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { openRaw, openRawConnected, type RawSocket } from "@tether/testkit/raw";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "fuzz-test-api-key-0123456789abcdefgh";
const HOST = resolve(import.meta.dirname, "../fixtures/hostile-host.ts");
const CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));
/** A fresh seed per run, printed so a failure replays (`TETHER_FUZZ_SEED=… npx vitest run …`). */
const SEED = Number(process.env.TETHER_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

/**
 * Payloads as JSON text, built without recursion (the test's own encoder would
 * overflow on what the server must survive): every JSON value, prototype keys,
 * nesting far past the bound, width, huge strings, wrong types.
 */
const hostileJson: fc.Arbitrary<string> = fc.oneof(
  fc.jsonValue({ maxDepth: 6 }).map((value) => JSON.stringify(value) ?? "null"),
  fc
    .tuple(
      fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "room"),
      fc.jsonValue(),
    )
    .map(([key, value]) => `{"${key}":${JSON.stringify(value) ?? "null"}}`),
  fc
    .tuple(fc.integer({ min: 30, max: 20_000 }), fc.constantFrom(["[", "]"], ['{"a":', "}"], ['{"doc":[', "]}"]))
    .map(([depth, [open, close]]) => `${open.repeat(depth)}0${close.repeat(depth)}`),
  fc.integer({ min: 1_000, max: 30_000 }).map((n) => `[${Array(n).fill(0).join(",")}]`),
  fc.integer({ min: 1_000, max: 70_000 }).map((n) => `"${"x".repeat(n)}"`),
  fc.constantFrom("null", "true", "-0", "1e308", '""', "[]", "{}", '{"room":1}', '{"room":"r","offset":{}}'),
);

/** Every client → server entry: the built-in events, the app's handlers, and names that are none of them. */
const eventName = fc.oneof(
  fc.constantFrom("echo", "room:join", "room:leave", "room:members", "doc:save", "db:id", "deep:result"),
  fc.constantFrom("__proto__", "constructor", "toString", "connect", "disconnect", "error", "welcome"),
  fc.string({ maxLength: 40 }),
);

/** A Socket.IO EVENT packet's frame: `42<ack id>[name, ...args]`. */
const eventFrame = fc
  .tuple(eventName, fc.array(hostileJson, { minLength: 0, maxLength: 3 }), fc.boolean())
  .map(([name, args, withAck]) => ({ name, withAck, body: `[${[JSON.stringify(name), ...args].join(",")}]` }));

/** Handshake `auth` objects: hostile values in each field the server reads, and others. */
const hostileAuth = fc
  .tuple(
    fc.constantFrom("token", "ticket", "offset", "rooms", "awayMs", "__proto__", "constructor"),
    hostileJson,
    fc.constantFrom("token", "rooms", "offset"),
    hostileJson,
  )
  .map(([k1, v1, k2, v2]) => `{"${k1}":${v1},"${k2}":${v2}}`);

/**
 * Property-based fuzzing of every client → server entry (issue 18): handshake
 * `auth`, each built-in event, the app's `handle()` payloads and join options,
 * in every shape, with the default limits on. The instance lives, a bystander
 * keeps its socket, and every answer is either a success or a typed error.
 */
describe("fuzzing every client → server entry", () => {
  let redis: TestRedis;
  let server: TestInstance;
  let session: TestSession;
  let bystander: WelcomedSocket;

  beforeAll(async () => {
    redis = await startRedis();
    server = await startInstance({ REDIS_URL: redis.url, TETHER_API_KEY: API_KEY }, { main: HOST });
    session = await login(server.url, API_KEY);
    bystander = await connectRaw(server.url, { token: await wsToken(server.url, await login(server.url, API_KEY)) });
    console.info(`fuzz seed: ${SEED}`);
  });

  afterAll(async () => {
    bystander?.close();
    await server?.kill();
    await redis?.close();
  });

  async function expectUnaffected(): Promise<void> {
    expect(server.process.exitCode).toBeNull();
    expect(bystander.connected).toBe(true);
    expect(await bystander.timeout(5_000).emitWithAck("echo", "ok")).toBe("ok");
  }

  it("events: every acknowledgement is a success or a typed error; the instance and the bystander live", async () => {
    let attacker: RawSocket | undefined;
    let ackId = 0;
    await fc.assert(
      fc.asyncProperty(eventFrame, async ({ name, withAck, body }) => {
        // An abusive or oversized attacker is disconnected: it comes back with a fresh token.
        if (!attacker?.isOpen())
          attacker = await openRawConnected(server.url, { token: await wsToken(server.url, session) });
        const id = ++ackId;
        const from = attacker.frames.length;
        attacker.send(withAck ? `42${id}${body}` : `42${body}`);
        if (!withAck) return;
        const open = attacker;
        const answer = await Promise.race([
          waitFor(`the ack of ${name.slice(0, 20)}`, () =>
            open.frames.slice(from).find((f) => f.startsWith(`43${id}[`)),
          ),
          open.closed.then(() => undefined),
        ]);
        if (answer === undefined) return; // Closed: the message was over the size cap, or the socket was abusive.
        const reply = (JSON.parse(answer.slice(`43${id}`.length)) as unknown[])[0] as {
          ok?: boolean;
          error?: { code?: string };
        };
        if (name === "echo" && reply?.ok !== false) return; // echo answers with what it was sent
        if (reply?.ok === false) expect(CODES.has(String(reply.error?.code))).toBe(true);
        else expect(reply).toMatchObject({ ok: true });
      }),
      { numRuns: 300, seed: SEED },
    );
    attacker?.close();
    await expectUnaffected();
  });

  it("handshakes: every refusal carries a code, nothing crashes", async () => {
    await fc.assert(
      fc.asyncProperty(hostileAuth, async (auth) => {
        const raw = await openRaw(server.url);
        try {
          raw.send(`40${auth}`);
          const answer = await Promise.race([
            waitFor("the handshake's answer", () => raw.frames.find((f) => f.startsWith("40") || f.startsWith("44"))),
            raw.closed.then(() => undefined),
          ]);
          if (answer?.startsWith("44")) {
            const { data } = JSON.parse(answer.slice(2)) as { data?: { code?: string; retryable?: boolean } };
            expect(CODES.has(String(data?.code))).toBe(true);
            expect(typeof data?.retryable).toBe("boolean");
          }
        } finally {
          raw.close();
        }
      }),
      { numRuns: 150, seed: SEED },
    );
    await expectUnaffected();
  });

  it("join options with a valid token: hostile offsets and rooms in the handshake are answered, never fatal", async () => {
    await fc.assert(
      fc.asyncProperty(hostileJson, hostileJson, async (offset, rooms) => {
        const own = await login(server.url, API_KEY);
        const raw = await openRaw(server.url);
        try {
          raw.send(`40{"token":"${await wsToken(server.url, own)}","offset":${offset},"rooms":${rooms}}`);
          await Promise.race([
            waitFor("welcome or refusal", () =>
              raw.frames.find((f) => f.startsWith('42["welcome"') || f.startsWith("44")),
            ),
            raw.closed,
          ]);
        } finally {
          raw.close();
        }
      }),
      { numRuns: 60, seed: SEED },
    );
    await expectUnaffected();
  });
});
