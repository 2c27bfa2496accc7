import { login, type TestSession } from "@tether/testkit/http";
import { bannerApiKey, startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Keys } from "../src/auth/keys.js";
import { SharedSecrets } from "../src/auth/secrets.js";
import { createMemoryBackend } from "../src/store/memory.js";

/** Generated secrets (no TETHER_API_KEY, no TETHER_SESSION_SECRET), checked at the default interval. */
const GENERATED: Record<string, string> = {};
/** How soon every instance agrees again after Redis lost the generated secrets. */
const CONVERGED_WITHIN_MS = 5_000;

async function accepted(url: string, session: TestSession): Promise<boolean> {
  const res = await fetch(`${url}/api/auth/session`, { headers: { cookie: session.cookie } });
  return res.status === 200;
}

describe("generated secrets converge after Redis loses them", () => {
  let redis: TestRedis;
  let control: Redis;
  const instances: TestInstance[] = [];
  const name = (id: string) => `secrets-${id}-${process.pid}`;
  const start = async (id: string) => {
    const instance = await startInstance({ REDIS_URL: redis.url, ...GENERATED, TETHER_INSTANCE_ID: name(id) });
    instances.push(instance);
    return instance;
  };

  beforeAll(async () => {
    redis = await startRedis();
    control = redis.client();
  });

  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.kill()));
    await redis?.close();
  });

  /** Every login on any instance is accepted by every instance, with the key each one answers to. */
  async function expectOneCluster(all: TestInstance[], apiKey: string) {
    for (const from of all) {
      const session = await login(from.url, apiKey);
      for (const to of all) expect(await accepted(to.url, session)).toBe(true);
    }
  }

  it("a FLUSHALL, then a new instance that generates its own: the old ones adopt them within 5 s, no split", async () => {
    const [a, b] = [await start("a"), await start("b")];
    const apiKey = await bannerApiKey(name("a"));
    expect(await bannerApiKey(name("b"))).toBe(apiKey);
    const before = await login(a.url, apiKey);
    expect(await accepted(b.url, before)).toBe(true);

    // Redis loses everything while A and B are frozen, and C starts in the gap: it generates new secrets.
    a.process.kill("SIGSTOP");
    b.process.kill("SIGSTOP");
    try {
      await control.flushall();
      const c = await start("c");
      const newKey = await bannerApiKey(name("c"));
      expect(newKey).not.toBe(apiKey);
      // The sessions are gone (an honest re-login), the generated secrets now C's.
      a.process.kill("SIGCONT");
      b.process.kill("SIGCONT");
      const onC = await login(c.url, newKey);
      await waitFor(
        "A and B to accept a login made on C",
        async () => (await accepted(a.url, onC)) && (await accepted(b.url, onC)),
        { timeoutMs: CONVERGED_WITHIN_MS },
      );
      await expectOneCluster([a, b, c], newKey);
      // The key every instance answers to is the one in Redis; the old one is refused everywhere.
      expect(await control.get("tether:apikey")).toBe(newKey);
      for (const instance of [a, b, c])
        expect(
          (
            await fetch(`${instance.url}/api/auth/login`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ apiKey }),
            })
          ).status,
        ).toBe(401);
    } finally {
      a.process.kill("SIGCONT");
      b.process.kill("SIGCONT");
    }
  });

  it("a FLUSHALL with the instances running: they put their secrets back within 5 s, and a new instance joins them", async () => {
    const [a] = instances;
    if (!a) throw new Error("the first test starts the instances");
    const apiKey = await bannerApiKey(name("c"));
    const secret = await control.get("tether:session-secret");
    await control.flushall();
    await waitFor(
      "the secrets written back",
      async () =>
        (await control.get("tether:apikey")) === apiKey && (await control.get("tether:session-secret")) === secret,
      { timeoutMs: CONVERGED_WITHIN_MS },
    );
    await start("d");
    expect(await bannerApiKey(name("d"))).toBe(apiKey);
    await expectOneCluster(instances, apiKey);
  });
});

describe("SharedSecrets.converge (in-memory store)", () => {
  const limits = { windowMs: 60_000, maxLength: 100, lastIdTtlMs: 60_000 };

  it("writes back what it holds when the key is gone, never a fresh value", async () => {
    const backend = createMemoryBackend(limits);
    const kv = backend.sessionClient as { get(key: string): Promise<string | null>; del(key: string): Promise<number> };
    const secrets = await SharedSecrets.resolve(backend.auth, { apiKey: undefined, sessionSecrets: [] });
    const [held] = secrets.sessionSecrets;
    const apiKey = secrets.apiKey;
    await kv.del(Keys.sessionSecret);
    await kv.del(Keys.apiKey);
    await secrets.converge();
    expect(await kv.get(Keys.sessionSecret)).toBe(held);
    expect(await kv.get(Keys.apiKey)).toBe(apiKey);
    expect(secrets.sessionSecrets).toEqual([held]);
    await backend.close();
  });

  it("adopts what the store holds; the session secret held before still verifies, in the same array", async () => {
    const backend = createMemoryBackend(limits);
    const kv = backend.sessionClient as { del(key: string): Promise<number> };
    const secrets = await SharedSecrets.resolve(backend.auth, { apiKey: undefined, sessionSecrets: [] });
    const live = secrets.sessionSecrets;
    const [held] = live;
    await kv.del(Keys.sessionSecret);
    await kv.del(Keys.apiKey);
    // Another instance got there first with values of its own.
    await backend.auth.getOrCreate(Keys.sessionSecret, "another-instance-session-secret-0123456789");
    await backend.auth.getOrCreate(Keys.apiKey, "another-instance-api-key-0123456789");
    await secrets.converge();
    expect(secrets.sessionSecrets).toBe(live);
    expect(live).toEqual(["another-instance-session-secret-0123456789", held]);
    expect(secrets.apiKey).toBe("another-instance-api-key-0123456789");
    await backend.close();
  });

  it("configured secrets are left alone", async () => {
    const backend = createMemoryBackend(limits);
    const secrets = await SharedSecrets.resolve(backend.auth, {
      apiKey: "configured-api-key-0123456789",
      sessionSecrets: ["configured-session-secret-0123456789-abcdef"],
    });
    await backend.auth.getOrCreate(Keys.sessionSecret, "another-instance-session-secret-0123456789");
    await secrets.converge();
    expect(secrets.sessionSecrets).toEqual(["configured-session-secret-0123456789-abcdef"]);
    expect(secrets.apiKey).toBe("configured-api-key-0123456789");
    await backend.close();
  });
});
