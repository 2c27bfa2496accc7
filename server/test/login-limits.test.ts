import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ErrorCode } from "@tether/shared";
import { fetchFrom, nextClientAddress } from "@tether/testkit/address";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { idleFor, waitFor } from "@tether/testkit/wait";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTether, loadConfig, type Tether } from "../src/index.js";

const API_KEY = "login-limits-api-key-0123456789ab";
const COMMAND_TIMEOUT_MS = 300;

/** POSTs a login body from `address`; returns status, Retry-After and the error code. */
async function attempt(url: string, body: object, address: string) {
  const res = await fetchFrom(address)(`${url}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { error?: { code: string } };
  return { status: res.status, retryAfter: res.headers.get("retry-after"), code: json.error?.code };
}

describe("login throttling cannot be turned against everyone (default limits)", () => {
  let redis: TestRedis;
  let instance: TestInstance;

  beforeAll(async () => {
    redis = await startRedis();
    instance = await startInstance({ REDIS_URL: redis.url, TETHER_API_KEY: API_KEY });
  });
  afterAll(async () => {
    await instance?.kill();
    await redis?.close();
  });

  it("1,100 wrong logins from one address in about a second lock out that address only", async () => {
    const attacker = nextClientAddress();
    const statuses: number[] = [];
    for (let batch = 0; batch < 22; batch++) {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          attempt(instance.url, { apiKey: `wrong-key-${batch}-${i}-pad` }, attacker),
        ),
      );
      statuses.push(...results.map((r) => r.status));
    }
    // The default per-address budget (20/1m) was spent on wrong keys; everything after is refused.
    expect(statuses.filter((s) => s === 401)).toHaveLength(20);
    expect(statuses.filter((s) => s === 429)).toHaveLength(1_080);
    expect((await attempt(instance.url, { apiKey: API_KEY }, attacker)).status).toBe(429);
    // Everyone else still logs in: refused attempts charged no fleet-wide budget.
    const other = await attempt(instance.url, { apiKey: API_KEY }, nextClientAddress());
    expect(other).toMatchObject({ status: 200, code: undefined });
  });
});

describe("a host app's login check names the account: failures are throttled per account too", () => {
  let redis: TestRedis;
  let tether: Tether;
  let http: Server;
  let url: string;
  const passwords: Record<string, string> = {
    alice: "wonderland",
    bob: "the-builder",
    carol: "christmas",
    slow: "remote-identity-provider",
  };
  let slowCheckEntered = false;
  let openSlowCheck = () => {};
  const slowCheckGate = new Promise<void>((resolve) => {
    openSlowCheck = resolve;
  });

  beforeAll(async () => {
    redis = await startRedis();
    const app = express();
    app.use(express.json());
    tether = await createTether({
      config: loadConfig({
        REDIS_URL: redis.url,
        LOG_LEVEL: "silent",
        TETHER_RATE_LIMIT_LOGIN: "3/1m",
        TETHER_RATE_LIMIT_LOGIN_ACCOUNT: "5/1m",
        TETHER_REDIS_COMMAND_TIMEOUT: `${COMMAND_TIMEOUT_MS}ms`,
      }),
      login: async (req) => {
        const { user, password } = req.body as { user?: unknown; password?: unknown };
        if (user === "slow") {
          slowCheckEntered = true;
          await slowCheckGate;
        }
        const account = typeof user === "string" ? user : undefined;
        return account !== undefined && passwords[account] === password
          ? { userId: `user-${account}`, account }
          : { refused: true, account };
      },
    });
    app.use(tether.router);
    http = createServer(app);
    tether.attach(http);
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await tether?.close();
    await redis?.close();
  });

  it("guesses from many addresses lock the account they target, even for the right password; others log in", async () => {
    for (let i = 0; i < 5; i++) {
      const res = await attempt(url, { user: "alice", password: `guess-${i}` }, nextClientAddress());
      expect(res).toMatchObject({ status: 401, code: ErrorCode.InvalidCredentials });
    }
    const locked = await attempt(url, { user: "alice", password: passwords.alice as string }, nextClientAddress());
    expect(locked).toMatchObject({ status: 429, code: ErrorCode.RateLimited });
    expect(Number(locked.retryAfter)).toBeGreaterThan(0);
    expect((await attempt(url, { user: "bob", password: passwords.bob as string }, nextClientAddress())).status).toBe(
      200,
    );
  });

  it("attempts the per-address limit refused are not charged to the account", async () => {
    const attacker = nextClientAddress();
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++)
      statuses.push((await attempt(url, { user: "carol", password: `x${i}` }, attacker)).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
    // Only the 3 admitted failures count against carol (budget 5): she still logs in.
    const carol = await attempt(url, { user: "carol", password: passwords.carol as string }, nextClientAddress());
    expect(carol.status).toBe(200);
  });

  it("a login check slower than the Redis command timeout still logs in: its time is not store time", async () => {
    const pending = attempt(url, { user: "slow", password: passwords.slow as string }, nextClientAddress());
    await waitFor("the check to run", () => slowCheckEntered);
    // The scenario is time passing inside the host's check (a remote identity provider).
    await idleFor(COMMAND_TIMEOUT_MS + 200);
    openSlowCheck();
    expect((await pending).status).toBe(200);
  });
});
