import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryBackend } from "../src/store/memory.js";
import { RedisAuthStore } from "../src/store/redis-auth.js";
import type { AuthStore } from "../src/store/types.js";
import { startRedis, type TestRedis } from "./helpers/redis.js";
import { waitFor } from "./helpers/wait.js";

/** One suite, both implementations: the Redis store and its in-process twin behave alike. */
interface Harness {
  store: AuthStore;
  /** Writes a session the way express-session would. */
  putSession(key: string, data: object, ttlMs: number): Promise<void>;
  ttlOf(key: string): Promise<number>;
  exists(key: string): Promise<boolean>;
}

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => redis?.close());

const implementations: [string, () => Harness][] = [
  [
    "redis",
    () => {
      const client = redis.client();
      return {
        store: new RedisAuthStore(client),
        putSession: async (key, data, ttlMs) => void (await client.set(key, JSON.stringify(data), "PX", ttlMs)),
        ttlOf: (key) => client.pttl(key),
        exists: async (key) => (await client.exists(key)) === 1,
      };
    },
  ],
  [
    "embedded",
    () => {
      const backend = createMemoryBackend({ windowMs: 60_000, maxLength: 100, lastIdTtlMs: 60_000 });
      const kv = backend.sessionClient as import("../src/store/memory.js").MemoryKeyValue;
      return {
        store: backend.auth,
        putSession: async (key, data, ttlMs) => void (await kv.set(key, JSON.stringify(data), "PX", ttlMs)),
        ttlOf: (key) => kv.pttl(key),
        exists: async (key) => (await kv.get(key)) !== null,
      };
    },
  ],
];

describe.each(implementations)("AuthStore on %s", (name, make) => {
  let h: Harness;
  beforeAll(() => {
    h = make();
  });
  const key = (suffix: string) => `test:${name}:${suffix}:${Math.random().toString(36).slice(2)}`;

  it("getOrCreate keeps the first value written", async () => {
    const k = key("shared");
    expect(await h.store.getOrCreate(k, "first")).toBe("first");
    expect(await h.store.getOrCreate(k, "second")).toBe("first");
  });

  it("writes a host session with its TTL until it is ended, then never again", async () => {
    const sess = key("host-sess");
    const ended = key("host-ended");
    const record = JSON.stringify({ userId: "u1", capAt: Date.now() + 600_000 });
    expect(await h.store.putHostSession(sess, ended, record, 30_000)).toBe(true);
    expect(await h.ttlOf(sess)).toBeGreaterThan(25_000);
    expect(await h.ttlOf(sess)).toBeLessThanOrEqual(30_000);
    await h.store.endHostSession(sess, ended, 60_000);
    expect(await h.exists(sess)).toBe(false);
    expect(await h.ttlOf(ended)).toBeGreaterThan(55_000);
    expect(await h.store.putHostSession(sess, ended, record, 30_000)).toBe(false);
    expect(await h.exists(sess)).toBe(false);
  });

  it("mints a token only for a live session, and the token is consumed once", async () => {
    const sess = key("sess");
    const prefix = sess.slice(0, sess.lastIndexOf(":") + 1);
    const sid = sess.slice(prefix.length);
    expect(await h.store.mintToken(sess, key("tok"), sid, 10_000, 60_000)).toBe(false);
    await h.putSession(sess, { userId: "u1", capAt: Date.now() + 600_000 }, 60_000);
    const tok = key("tok");
    expect(await h.store.mintToken(sess, tok, sid, 10_000, 60_000)).toBe(true);
    const first = await h.store.consumeToken(tok, prefix);
    expect(first).toMatchObject({ status: "ok", sid });
    expect(first.status === "ok" && JSON.parse(first.session)).toMatchObject({ userId: "u1" });
    expect(await h.store.consumeToken(tok, prefix)).toEqual({ status: "unknown" });
  });

  it("a token whose session was deleted reports session-gone", async () => {
    const sess = key("sess");
    const prefix = sess.slice(0, sess.lastIndexOf(":") + 1);
    await h.putSession(sess, { userId: "u1", capAt: Date.now() + 600_000 }, 60_000);
    const tok = key("tok");
    await h.store.mintToken(sess, tok, sess.slice(prefix.length), 10_000, 60_000);
    await h.store.renewSessions([sess], 0);
    expect(await h.store.consumeToken(tok, prefix)).toMatchObject({ status: "session-gone" });
  });

  it("a token expires after its TTL", async () => {
    const sess = key("sess");
    await h.putSession(sess, { userId: "u1", capAt: Date.now() + 600_000 }, 60_000);
    const tok = key("tok");
    await h.store.mintToken(sess, tok, "sid", 50, 60_000);
    await waitFor("the token to expire", async () => !(await h.exists(tok)));
  });

  it("renewal extends the idle TTL but never past the absolute cap", async () => {
    const sess = key("sess");
    await h.putSession(sess, { userId: "u1", capAt: Date.now() + 5_000 }, 1_000);
    expect(await h.store.renewSessions([sess], 60_000)).toEqual([]);
    const ttl = await h.ttlOf(sess);
    expect(ttl).toBeGreaterThan(1_000);
    expect(ttl).toBeLessThanOrEqual(5_000);
  });

  it("renewal reports the sessions that are gone, by index", async () => {
    const live = key("sess");
    await h.putSession(live, { userId: "u1", capAt: Date.now() + 60_000 }, 60_000);
    const past = key("sess");
    await h.putSession(past, { userId: "u1", capAt: Date.now() - 1 }, 60_000);
    expect(await h.store.renewSessions([key("missing"), live, past], 60_000)).toEqual([0, 2]);
    expect(await h.exists(past)).toBe(false);
  });
});
