import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { startRedisCluster, type TestRedisCluster } from "@tether/testkit/redis-cluster";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryBackend } from "../src/store/memory.js";
import { RedisAuthStore } from "../src/store/redis-auth.js";
import type { AuthStore, HostSessionWrite } from "../src/store/types.js";

/**
 * One suite, every implementation: the Redis store (on one Redis, and on a Redis Cluster,
 * where its steps take another path) and its in-process twin behave alike.
 */
interface Harness {
  store: AuthStore;
  /** Writes a session the way express-session would. */
  putSession(key: string, data: object, ttlMs: number): Promise<void>;
  ttlOf(key: string): Promise<number>;
  exists(key: string): Promise<boolean>;
  /** A string key's value; undefined when absent. */
  get(key: string): Promise<string | undefined>;
}

let redis: TestRedis;
/** Started by the cluster suite only (three more redis-servers). */
let cluster: TestRedisCluster | undefined;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
  await cluster?.close();
});

const implementations: [string, () => Harness | Promise<Harness>][] = [
  [
    "redis",
    () => {
      const client = redis.client();
      return {
        store: new RedisAuthStore(client),
        putSession: async (key, data, ttlMs) => void (await client.set(key, JSON.stringify(data), "PX", ttlMs)),
        ttlOf: (key) => client.pttl(key),
        exists: async (key) => (await client.exists(key)) === 1,
        get: async (key) => (await client.get(key)) ?? undefined,
      };
    },
  ],
  [
    "redis cluster",
    async () => {
      cluster = await startRedisCluster();
      const client = cluster.client();
      return {
        store: new RedisAuthStore(client),
        putSession: async (key, data, ttlMs) => void (await client.set(key, JSON.stringify(data), "PX", ttlMs)),
        ttlOf: (key) => client.pttl(key),
        exists: async (key) => (await client.exists(key)) === 1,
        get: async (key) => (await client.get(key)) ?? undefined,
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
        get: async (key) => (await kv.get(key)) ?? undefined,
      };
    },
  ],
];

describe.each(implementations)("AuthStore on %s", (name, make) => {
  let h: Harness;
  beforeAll(async () => {
    h = await make();
  });
  const key = (suffix: string) => `test:${name}:${suffix}:${Math.random().toString(36).slice(2)}`;

  it("getOrCreate keeps the first value written", async () => {
    const k = key("shared");
    expect(await h.store.getOrCreate(k, "first")).toBe("first");
    expect(await h.store.getOrCreate(k, "second")).toBe("first");
  });

  /** The keys of one host session; the grant defaults: a host expiry an hour away, a 10 s max age. */
  const hostKeys = () => ({ session: key("host-sess"), record: key("host-rec"), legacyEnded: key("host-ended") });
  const grantOf = (over: Partial<HostSessionWrite> = {}): HostSessionWrite => {
    const now = over.now ?? Date.now();
    return {
      userId: "u1",
      expiresAt: now + 3_600_000,
      now,
      maxAgeMs: 10_000,
      idleTtlMs: 5_000,
      credentialTtlMs: 2_000,
      ...over,
    };
  };
  const readSession = async (k: string) => {
    const json = await h.get(k);
    return json === undefined ? undefined : (JSON.parse(json) as { userId: string; capAt: number });
  };

  it("writes a host session as express-session does, living the idle TTL, until it is ended, then never again", async () => {
    const keys = hostKeys();
    const grant = grantOf({ expiresAt: Date.now() + 8_000 });
    const capAt = grant.expiresAt;
    expect(await h.store.putHostSession(keys, grant)).toEqual({ status: "ok", capAt });
    expect(JSON.parse((await h.get(keys.session)) ?? "")).toEqual({
      cookie: {
        originalMaxAge: capAt - grant.now,
        expires: new Date(capAt).toISOString(),
        httpOnly: true,
        path: "/",
      },
      userId: "u1",
      capAt,
    });
    expect(await h.ttlOf(keys.session)).toBeGreaterThan(4_000);
    expect(await h.ttlOf(keys.session)).toBeLessThanOrEqual(5_000);
    await h.store.endHostSession(keys, { now: Date.now(), maxAgeMs: 60_000 });
    expect(await h.exists(keys.session)).toBe(false);
    expect(await h.store.putHostSession(keys, grantOf())).toEqual({ status: "ended" });
    expect(await h.exists(keys.session)).toBe(false);
  });

  it("the cap is fixed at the first grant: later grants keep it, and once it passed they are refused", async () => {
    const keys = hostKeys();
    const t0 = Date.now();
    expect(await h.store.putHostSession(keys, grantOf({ now: t0 }))).toEqual({ status: "ok", capAt: t0 + 10_000 });
    // A reconnect later on (the store is told the time): the cap does not move.
    expect(await h.store.putHostSession(keys, grantOf({ now: t0 + 6_000 }))).toEqual({
      status: "ok",
      capAt: t0 + 10_000,
    });
    expect((await readSession(keys.session))?.capAt).toBe(t0 + 10_000);
    // The host's expiry caps it further, and may move within the max age.
    expect(await h.store.putHostSession(keys, grantOf({ now: t0 + 7_000, expiresAt: t0 + 8_000 }))).toEqual({
      status: "ok",
      capAt: t0 + 8_000,
    });
    expect(await h.store.putHostSession(keys, grantOf({ now: t0 + 7_500 }))).toEqual({
      status: "ok",
      capAt: t0 + 10_000,
    });
    expect(await h.store.putHostSession(keys, grantOf({ now: t0 + 10_000 }))).toEqual({ status: "expired" });
    expect(await h.store.putHostSession(keys, grantOf({ now: t0 + 20_000 }))).toEqual({ status: "expired" });
  });

  it("a key is bound to its first user: another user's grant is refused and changes nothing, even once ended", async () => {
    const keys = hostKeys();
    const t0 = Date.now();
    await h.store.putHostSession(keys, grantOf({ now: t0 }));
    const ttlBefore = await h.ttlOf(keys.record);
    expect(
      await h.store.putHostSession(keys, grantOf({ userId: "u2", now: t0 + 1, expiresAt: t0 + 30 * 86_400_000 })),
    ).toEqual({ status: "other-user" });
    expect(await readSession(keys.session)).toMatchObject({ userId: "u1", capAt: t0 + 10_000 });
    expect(await h.ttlOf(keys.record)).toBeLessThanOrEqual(ttlBefore);
    await h.store.endHostSession(keys, { now: t0 + 2, maxAgeMs: 10_000 });
    expect(await h.store.putHostSession(keys, grantOf({ userId: "u2", now: t0 + 3 }))).toEqual({
      status: "other-user",
    });
    expect(await h.exists(keys.session)).toBe(false);
  });

  it("concurrent grants of one key for two users: one wins, the other is refused, the session is the winner's", async () => {
    const keys = hostKeys();
    const now = Date.now();
    const [first, second] = await Promise.all([
      h.store.putHostSession(keys, grantOf({ userId: "u1", now })),
      h.store.putHostSession(keys, grantOf({ userId: "u2", now })),
    ]);
    const results = [first?.status, second?.status];
    expect(results.sort()).toEqual(["ok", "other-user"]);
    const winner = first?.status === "ok" ? "u1" : "u2";
    expect((await readSession(keys.session))?.userId).toBe(winner);
  });

  it("the record lives while a credential could be presented: past the cap by the credential TTL, and until the host's expiry", async () => {
    const keys = hostKeys();
    const t0 = Date.now();
    // Host expiry (1 h) later than the cap (10 s): kept until the host expiry.
    await h.store.putHostSession(keys, grantOf({ now: t0 }));
    expect(await h.ttlOf(keys.record)).toBeGreaterThan(3_500_000);
    // Host expiry within the cap: kept until the cap plus the credential TTL.
    const short = hostKeys();
    await h.store.putHostSession(short, grantOf({ now: t0, expiresAt: t0 + 3_000 }));
    expect(await h.ttlOf(short.record)).toBeGreaterThan(11_000);
    expect(await h.ttlOf(short.record)).toBeLessThanOrEqual(12_000);
    // A later expiry seen extends it; an earlier one never shortens it.
    await h.store.putHostSession(short, grantOf({ now: t0 + 1, expiresAt: t0 + 60_000 }));
    expect(await h.ttlOf(short.record)).toBeGreaterThan(55_000);
    await h.store.putHostSession(short, grantOf({ now: t0 + 2, expiresAt: t0 + 4_000 }));
    expect(await h.ttlOf(short.record)).toBeGreaterThan(55_000);
  });

  it("an end is remembered at least the max age, and until the latest host expiry seen, before or after the end", async () => {
    const t0 = Date.now();
    // Never granted: the max age.
    const unknown = hostKeys();
    await h.store.endHostSession(unknown, { now: t0, maxAgeMs: 60_000 });
    expect(await h.ttlOf(unknown.record)).toBeGreaterThan(55_000);
    expect(await h.store.putHostSession(unknown, grantOf({ now: t0 + 1 }))).toEqual({ status: "ended" });
    // Granted with a host expiry a day away: a day, whatever the max age.
    const keys = hostKeys();
    await h.store.putHostSession(keys, grantOf({ now: t0, expiresAt: t0 + 86_400_000 }));
    await h.store.endHostSession(keys, { now: t0 + 1, maxAgeMs: 10_000 });
    expect(await h.ttlOf(keys.record)).toBeGreaterThan(86_000_000);
    // A refused grant with a later host expiry (the host extended its session) extends it.
    expect(await h.store.putHostSession(keys, grantOf({ now: t0 + 2, expiresAt: t0 + 2 * 86_400_000 }))).toEqual({
      status: "ended",
    });
    expect(await h.ttlOf(keys.record)).toBeGreaterThan(172_000_000);
    expect(await h.exists(keys.session)).toBe(false);
  });

  it("honours and writes the ended marker of earlier releases (a rolling upgrade)", async () => {
    const keys = hostKeys();
    await h.putSession(keys.legacyEnded, {}, 60_000);
    expect(await h.store.putHostSession(keys, grantOf())).toEqual({ status: "ended" });
    expect(await h.exists(keys.session)).toBe(false);
    const other = hostKeys();
    await h.store.putHostSession(other, grantOf());
    await h.store.endHostSession(other, { now: Date.now(), maxAgeMs: 60_000 });
    expect(await h.exists(other.legacyEnded)).toBe(true);
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

  it("renews the first `renewing` sessions and only checks the rest, reporting the gone of both by index", async () => {
    const due = key("sess");
    await h.putSession(due, { userId: "u1", capAt: Date.now() + 600_000 }, 1_000);
    const checked = key("sess");
    await h.putSession(checked, { userId: "u1", capAt: Date.now() + 600_000 }, 1_000);
    expect(await h.store.renewSessions([due, checked], 60_000, 1)).toEqual([]);
    expect(await h.ttlOf(due)).toBeGreaterThan(1_000);
    expect(await h.ttlOf(checked)).toBeLessThanOrEqual(1_000);
    expect(await h.store.renewSessions([key("missing"), due, key("missing"), checked], 60_000, 2)).toEqual([0, 2]);
    expect(await h.store.renewSessions([due, key("missing"), checked], 60_000, 0)).toEqual([1]);
  });

  it("counts a limit in a fixed window: past its points it answers the ms left; a peek counts nothing; a reset forgets", async () => {
    const limit = { key: key("limit"), points: 2, windowSeconds: 10 };
    expect(await h.store.peekLimit(limit.key)).toBeUndefined();
    expect(await h.store.chargeLimit(limit)).toBe(0);
    expect(await h.store.chargeLimit(limit)).toBe(0);
    const limitedMs = await h.store.chargeLimit(limit);
    expect(limitedMs).toBeGreaterThan(0);
    expect(limitedMs).toBeLessThanOrEqual(10_000);
    const peeked = await h.store.peekLimit(limit.key);
    expect(peeked?.count).toBe(3);
    expect(peeked?.msLeft).toBeLessThanOrEqual(10_000);
    expect((await h.store.peekLimit(limit.key))?.count).toBe(3);
    await h.store.resetLimit(limit.key);
    expect(await h.store.peekLimit(limit.key)).toBeUndefined();
    expect(await h.store.chargeLimit(limit)).toBe(0);
  });

  it("a mint past its limit mints nothing; a consume past a limit counts every limit and still spends its token", async () => {
    const sess = key("sess");
    const prefix = sess.slice(0, sess.lastIndexOf(":") + 1);
    const sid = sess.slice(prefix.length);
    await h.putSession(sess, { userId: "u1", capAt: Date.now() + 600_000 }, 60_000);
    const mintLimit = { key: key("mint-limit"), points: 1, windowSeconds: 10 };
    const first = key("tok");
    expect(await h.store.mintToken(sess, first, sid, 10_000, 60_000, mintLimit)).toBe(true);
    const refused = key("tok");
    expect(await h.store.mintToken(sess, refused, sid, 10_000, 60_000, mintLimit)).toMatchObject({
      limitedMs: expect.any(Number),
    });
    expect(await h.exists(refused)).toBe(false);
    const second = key("tok");
    await h.store.mintToken(sess, second, sid, 10_000, 60_000);
    const tight = { key: key("tight"), points: 1, windowSeconds: 10 };
    const loose = { key: key("loose"), points: 5, windowSeconds: 10 };
    expect(await h.store.consumeToken(first, prefix, [tight, loose])).toMatchObject({ status: "ok", sid });
    expect(await h.store.consumeToken(second, prefix, [tight, loose])).toMatchObject({ status: "limited" });
    expect(await h.exists(second)).toBe(false);
    expect((await h.store.peekLimit(tight.key))?.count).toBe(2);
    expect((await h.store.peekLimit(loose.key))?.count).toBe(2);
  });

  it("admits a session by its cookie: counts the limits, renews the idle TTL, spends nothing; gone or past its cap: session-gone", async () => {
    const sess = key("sess");
    const prefix = sess.slice(0, sess.lastIndexOf(":") + 1);
    const sid = sess.slice(prefix.length);
    expect(await h.store.admitSession(sid, prefix, 60_000)).toEqual({ status: "session-gone", sid });
    await h.putSession(sess, { userId: "u1", capAt: Date.now() + 600_000 }, 5_000);
    const limit = { key: key("limit"), points: 2, windowSeconds: 10 };
    for (let i = 0; i < 2; i++) {
      const found = await h.store.admitSession(sid, prefix, 60_000, [limit]);
      expect(found).toMatchObject({ status: "ok", sid });
      expect(found.status === "ok" && JSON.parse(found.session)).toMatchObject({ userId: "u1" });
    }
    expect(await h.ttlOf(sess)).toBeGreaterThan(5_000);
    expect(await h.store.admitSession(sid, prefix, 60_000, [limit])).toMatchObject({ status: "limited" });
    // Past its absolute cap a session admits no one, and is gone.
    const capped = key("sess");
    await h.putSession(capped, { userId: "u1", capAt: Date.now() - 1 }, 60_000);
    expect(await h.store.admitSession(capped.slice(prefix.length), prefix, 60_000)).toMatchObject({
      status: "session-gone",
    });
    expect(await h.exists(capped)).toBe(false);
  });

  it("concurrent consumes of one resume ticket: exactly one gets its session", async () => {
    const sess = key("sess");
    const prefix = sess.slice(0, sess.lastIndexOf(":") + 1);
    const sid = sess.slice(prefix.length);
    await h.putSession(sess, { userId: "u1", capAt: Date.now() + 600_000 }, 60_000);
    const nonce = key("nonce");
    const found = await Promise.all(Array.from({ length: 5 }, () => h.store.consumeTicket(nonce, 10_000, sid, prefix)));
    expect(found.filter((result) => result.status === "ok")).toHaveLength(1);
    expect(found.filter((result) => result.status === "unknown")).toHaveLength(4);
  });
});
