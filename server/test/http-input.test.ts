import { ErrorCode } from "@tether/shared";
import { login, post } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "input-test-api-key-0123456789abc";
const INSTANCE = `input-test-${process.pid}`;

describe("bad HTTP input gets the contract's error codes and the server keeps serving", () => {
  let redis: TestRedis;
  let server: TestInstance;

  beforeAll(async () => {
    redis = await startRedis();
    server = await startInstance({ REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_INSTANCE_ID: INSTANCE });
  });
  afterAll(async () => {
    await server?.kill();
    await redis?.close();
  });

  const cases: [string, unknown, number, string][] = [
    ["malformed JSON", '{"apiKey": ', 400, ErrorCode.InvalidInput],
    ["a number for the key", { apiKey: 42 }, 400, ErrorCode.InvalidInput],
    ["an array body", "[1,2,3]", 400, ErrorCode.InvalidInput],
    ["a JSON string body", '"apiKey"', 400, ErrorCode.InvalidInput],
    ["no body", undefined, 400, ErrorCode.InvalidInput],
    [
      "a prototype-polluting body",
      '{"__proto__":{"apiKey":"x"},"constructor":{"prototype":{}}}',
      400,
      ErrorCode.InvalidInput,
    ],
    ["a huge body", { apiKey: "k".repeat(1_000_000) }, 413, ErrorCode.PayloadTooLarge],
    ["the wrong key", { apiKey: "wrong-key-wrong-key" }, 401, ErrorCode.InvalidCredentials],
  ];

  it.each(cases)("login with %s → %i %s", async (_name, body, status, code) => {
    const res = await post(`${server.url}/api/auth/login`, body);
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ error: { code, message: expect.any(String) } });
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.(ts|js):\d+/);
  });

  it("job requests are validated", async () => {
    const session = await login(server.url, API_KEY);
    for (const body of [
      { steps: "3", intervalMs: 10 },
      { steps: 0, intervalMs: 10 },
      { steps: 1e9, intervalMs: 1 },
      {},
    ]) {
      const res = await post(`${server.url}/api/jobs`, body, { cookie: session.cookie });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: { code: ErrorCode.InvalidInput } });
    }
    const ok = await post(`${server.url}/api/jobs`, { steps: 1, intervalMs: 1 }, { cookie: session.cookie });
    expect(ok.status).toBe(202);
    // The instance running the job: a page can tell the job died with it.
    expect(ok.body).toEqual({ jobId: expect.any(String), instance: INSTANCE });
  });

  it("forged and tampered session cookies get 401 SESSION_REQUIRED, never a 500", async () => {
    const session = await login(server.url, API_KEY);
    const tampered = session.cookie.replace(/.$/, (c) => (c === "A" ? "B" : "A"));
    for (const cookie of [tampered, "tether.sid=s%3Aforged.sig", "tether.sid=plain", "tether.sid=%E0%A4%A"]) {
      const res = await post(`${server.url}/api/auth/ws-token`, undefined, { cookie });
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ error: { code: ErrorCode.SessionRequired } });
    }
  });

  it("unknown routes answer 404 JSON", async () => {
    const res = await fetch(`${server.url}/api/nothing-here`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: ErrorCode.NotFound } });
  });

  it("is still serving after all of the above", async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await login(server.url, API_KEY)).cookie).toMatch(/^tether\.sid=/);
  });
});
