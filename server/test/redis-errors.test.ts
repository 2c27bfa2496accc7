import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode } from "@tether/shared";
import { nextClientAddress } from "@tether/testkit/address";
import { login, post, refusal, type TestSession, wsToken } from "@tether/testkit/http";
import { LOG_DIR, startInstance, type TestInstance } from "@tether/testkit/instance";
import { freePort } from "@tether/testkit/ports";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { startRedisCluster, type TestRedisCluster } from "@tether/testkit/redis-cluster";
import { waitFor } from "@tether/testkit/wait";
import { Redis as IORedis, type Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "redis-errors-api-key-0123456789abcd";
const PUBLISH_KEY = "redis-errors-publish-key-0123456789";
/** Keys loaded slowly by DEBUG RELOAD (1 ms each), so LOADING lasts a few seconds. */
const FILLER_KEYS = 3_000;
/** Its log file is LOG_DIR/<id>.log. */
const INSTANCE_ID = `redis-errors-${process.pid}`;

/** A Redis availability fault, injected for real; `writesOnly` faults leave reads working. */
interface Fault {
  name: string;
  writesOnly: boolean;
  start(): Promise<void>;
  end(): Promise<void>;
}

/** What each route and the handshake answered during a fault. */
interface Answers {
  [route: string]: { status: number; code?: string; retryable?: boolean };
}

describe("Redis availability errors: 503 UNAVAILABLE (retryable) on every route and the handshake, and no secret in any log line", () => {
  let redis: TestRedis;
  let admin: Redis;
  let instance: TestInstance;
  const secrets = new Set<string>([API_KEY, PUBLISH_KEY]);

  const remember = (session: TestSession): TestSession => {
    const value = session.cookie.split("=")[1] ?? "";
    secrets.add(value);
    const signed = decodeURIComponent(value);
    secrets.add(signed.slice(2, signed.indexOf(".")));
    return session;
  };

  const ready = () =>
    waitFor("the instance to be ready again", async () => (await fetch(`${instance.url}/readyz`)).status === 200, {
      timeoutMs: 20_000,
    });

  beforeAll(async () => {
    // Persistence: the connection-loss fault restarts Redis, and DEBUG RELOAD reloads its data.
    redis = await startRedis({ persistence: true, args: ["--enable-debug-command", "local"] });
    admin = redis.client();
    instance = await startInstance({
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_PUBLISH_KEY: PUBLISH_KEY,
      TETHER_REDIS_COMMAND_TIMEOUT: "1s",
      // Publishes retry transient failures until this deadline (publish-idempotency.test.ts): shorter
      // than every fault here, so POST /api/publish answers within the fault like the other routes.
      TETHER_PUBLISH_DEADLINE: "500ms",
      TETHER_WS_TOKEN_TTL: "30s",
      LOG_LEVEL: "debug",
      TETHER_INSTANCE_ID: INSTANCE_ID,
    });
  });
  afterAll(async () => {
    await instance?.kill();
    await redis?.close();
  });

  const faults: Fault[] = [
    {
      name: "command timeout (Redis stalled by CLIENT PAUSE)",
      writesOnly: false,
      // Twice the 2.5 s within which every answer must come (below): on a loaded machine a request
      // reaching Redis after a shorter pause had ended was served (the publish answered 202).
      start: async () => void (await admin.call("CLIENT", "PAUSE", "5000", "ALL")),
      // Nothing unpauses early (CLIENT UNPAUSE waits too): a fresh PING answers when the pause ends.
      end: async () => {
        const probe = redis.client();
        await waitFor("the pause to end", async () => (await probe.ping()) === "PONG");
        await ready();
      },
    },
    {
      name: "connection loss (Redis stopped)",
      writesOnly: false,
      start: () => redis.stop(),
      end: async () => {
        await redis.start();
        await ready();
      },
    },
    {
      name: "READONLY (a primary demoted to replica, as after a failover)",
      writesOnly: true,
      // A replica of a master that never answers keeps its data and refuses writes.
      start: async () => void (await admin.replicaof("127.0.0.1", await freePort())),
      end: async () => void (await admin.replicaof("NO", "ONE")),
    },
    {
      name: "OOM (maxmemory reached, noeviction)",
      writesOnly: true,
      start: async () => {
        await admin.config("SET", "maxmemory-policy", "noeviction");
        await admin.config("SET", "maxmemory", "1");
      },
      end: async () => void (await admin.config("SET", "maxmemory", "0")),
    },
    {
      // DEBUG RELOAD saves and reloads the dataset; key-load-delay (a debug setting) slows the load
      // so that Redis answers LOADING for a few seconds: reliable, unlike racing a real restart.
      name: "LOADING (dataset being loaded)",
      writesOnly: false,
      start: async () => {
        // (DEBUG POPULATE is not written to the AOF: the keys are made here, after any restart.)
        await admin.call("DEBUG", "POPULATE", String(FILLER_KEYS), "filler");
        await admin.config("SET", "key-load-delay", "1000");
        await admin.config("SET", "loading-process-events-interval-bytes", "1024");
        // Connected first: a client that connects during the load waits in its ready check and
        // never sees LOADING.
        const probe = redis.client();
        await probe.ping();
        const reloader = redis.client();
        reloaded = reloader.call("DEBUG", "RELOAD");
        await waitFor("Redis to answer LOADING", () =>
          probe.get("x").then(
            () => false,
            (err: Error) => err.message.startsWith("LOADING"),
          ),
        );
      },
      end: async () => {
        await reloaded;
        await admin.config("SET", "key-load-delay", "0");
        await ready();
      },
    },
  ];
  let reloaded: Promise<unknown> = Promise.resolve();

  it.each(faults)("$name", async (fault) => {
    const session = remember(await login(instance.url, API_KEY));
    const leaving = remember(await login(instance.url, API_KEY));
    const token = await wsToken(instance.url, session);
    secrets.add(token);
    const cookie = { cookie: session.cookie };
    const answer = async (res: Promise<{ status: number; body?: Record<string, unknown> }>) => {
      const { status, body } = await res;
      return { status, code: (body?.error as { code?: string } | undefined)?.code };
    };

    await fault.start();
    const started = Date.now();
    const [loginRes, logoutRes, sessionRes, tokenRes, jobsRes, publishRes, handshake] = await Promise.all([
      answer(post(`${instance.url}/api/auth/login`, { apiKey: API_KEY })),
      answer(post(`${instance.url}/api/auth/logout`, undefined, { cookie: leaving.cookie })),
      fetch(`${instance.url}/api/auth/session`, { headers: cookie }).then(async (res) => ({
        status: res.status,
        code: ((await res.json()) as { error?: { code?: string } }).error?.code,
      })),
      answer(post(`${instance.url}/api/auth/ws-token`, undefined, cookie)),
      answer(post(`${instance.url}/api/jobs`, { steps: 1, intervalMs: 1 }, cookie)),
      answer(
        post(
          `${instance.url}/api/publish`,
          { target: { user: "admin" }, event: "note", data: { n: 1 } },
          { authorization: `Bearer ${PUBLISH_KEY}` },
        ),
      ),
      refusal(instance.url, { token }, { localAddress: nextClientAddress() }),
    ]);
    const elapsedMs = Date.now() - started;
    await fault.end();

    const answers: Answers = {
      login: loginRes,
      logout: logoutRes,
      session: sessionRes,
      "ws-token": tokenRes,
      jobs: jobsRes,
      publish: publishRes,
      handshake: { status: 0, code: handshake.data?.code, retryable: handshake.data?.retryable },
    };
    const unavailable = { status: 503, code: ErrorCode.Unavailable };
    // Every route that writes fails the same way, whatever the fault.
    expect(answers, JSON.stringify(answers)).toMatchObject({
      login: unavailable,
      "ws-token": unavailable,
      publish: unavailable,
      handshake: { code: ErrorCode.Unavailable, retryable: true },
    });
    // Routes that only read (or delete) may still succeed when only writes are refused; never a 500.
    for (const [route, res] of Object.entries(answers)) {
      expect(res.status, `${route}: ${JSON.stringify(res)}`).not.toBe(500);
      if (res.status === 503) expect(res.code, route).toBe(ErrorCode.Unavailable);
    }
    if (!fault.writesOnly)
      for (const route of ["logout", "session", "jobs"]) expect(answers[route], route).toMatchObject(unavailable);
    // One deadline per request: the slowest answer came within one command timeout (1 s) and
    // slack for a loaded machine; before, each rate-limit check waited out a timeout of its
    // own, three in a row for a login (3 s and more).
    expect(elapsedMs).toBeLessThan(2_500);

    // The token presented during the fault is dead now, though its consume failed.
    await waitFor("the failed token's deletion", async () => (await admin.exists(`tether:wstok:${token}`)) === 0);
    expect((await refusal(instance.url, { token })).data?.code).toBe(ErrorCode.TokenInvalid);
  });

  it("no log line holds a session id, a cookie, a token, the API key or the publish key", () => {
    const all = readFileSync(join(LOG_DIR, `${INSTANCE_ID}.log`), "utf8");
    // The faults were logged (so this grep means something), by the allow-list serializer.
    expect(all).toMatch(/"msg":"store unavailable"/);
    expect(all).not.toMatch(/"args":/);
    // express-session's late error: under READONLY its touch (EXPIRE) fails after the 200 went out.
    expect(all).toMatch(/"command":"expire"[^\n]*"route":"\/api\/auth\/session"/);
    for (const secret of secrets)
      expect(all.includes(secret), `a log line holds a secret (${secret.slice(0, 4)}…)`).toBe(false);
  });
});

describe("CLUSTERDOWN on a Redis Cluster: 503 UNAVAILABLE, and the failed token is retired", () => {
  let cluster: TestRedisCluster;
  let nodes: Redis[];
  let instance: TestInstance;
  const secrets = new Set<string>([API_KEY]);
  const CLUSTER_INSTANCE_ID = `${INSTANCE_ID}-cluster`;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    nodes = cluster.urls.split(",").map((url) => {
      const node = new IORedis(url);
      node.on("error", () => {});
      return node;
    });
    instance = await startInstance({
      REDIS_URL: cluster.urls,
      TETHER_REDIS_CLUSTER: "on",
      TETHER_API_KEY: API_KEY,
      TETHER_REDIS_COMMAND_TIMEOUT: "1s",
      TETHER_WS_TOKEN_TTL: "30s",
      LOG_LEVEL: "debug",
      TETHER_INSTANCE_ID: CLUSTER_INSTANCE_ID,
    });
  }, 90_000);
  afterAll(async () => {
    await instance?.kill();
    for (const node of nodes ?? []) node.disconnect();
    await cluster?.close();
  });

  const clusterState = (node: Redis) =>
    node.call("CLUSTER", "INFO").then((info) => /cluster_state:(\w+)/.exec(String(info))?.[1]);

  it("every node forgets one slot: the cluster is down for every key until it is assigned again", async () => {
    const session = await login(instance.url, API_KEY);
    const token = await wsToken(instance.url, session);
    const value = session.cookie.split("=")[1] ?? "";
    secrets
      .add(value)
      .add(decodeURIComponent(value).slice(2).split(".")[0] ?? "")
      .add(token);
    const first = nodes[0] as Redis;
    const slot = 0;
    // Slot 0 lives on some node; with every node's view of it deleted, full coverage is lost
    // (cluster-require-full-coverage yes, the default) and every node answers CLUSTERDOWN.
    const slots = (await first.call("CLUSTER", "SLOTS")) as [number, number, [string, number]][];
    const ownerPort = slots.find(([from, to]) => from <= slot && slot <= to)?.[2][1];
    await Promise.all(nodes.map((node) => node.call("CLUSTER", "DELSLOTS", String(slot))));
    await waitFor("CLUSTERDOWN", () =>
      first.get("any").then(
        () => false,
        (err: Error) => /^CLUSTERDOWN/.test(err.message),
      ),
    );

    const started = Date.now();
    const [loginRes, tokenRes, sessionRes, handshake] = await Promise.all([
      post(`${instance.url}/api/auth/login`, { apiKey: API_KEY }),
      post(`${instance.url}/api/auth/ws-token`, undefined, { cookie: session.cookie }),
      fetch(`${instance.url}/api/auth/session`, { headers: { cookie: session.cookie } }),
      refusal(instance.url, { token }),
    ]);
    const elapsedMs = Date.now() - started;
    const restorer = nodes.find((node) => node.options.port === ownerPort) as Redis;
    await restorer.call("CLUSTER", "ADDSLOTS", String(slot));
    await waitFor("the cluster to be up again", async () =>
      (await Promise.all(nodes.map(clusterState))).every((state) => state === "ok"),
    );

    expect(loginRes).toMatchObject({ status: 503, body: { error: { code: ErrorCode.Unavailable } } });
    expect(tokenRes).toMatchObject({ status: 503, body: { error: { code: ErrorCode.Unavailable } } });
    expect(sessionRes.status).toBe(503);
    expect(handshake.data).toEqual({ code: ErrorCode.Unavailable, retryable: true });
    // (Before: each rate-limit check waited out a timeout of its own, two or three in a row.)
    expect(elapsedMs).toBeLessThan(2_500);
    const probe = cluster.client();
    await waitFor("the failed token's deletion", async () => (await probe.exists(`tether:wstok:${token}`)) === 0);
    expect((await refusal(instance.url, { token })).data?.code).toBe(ErrorCode.TokenInvalid);

    const log = readFileSync(join(LOG_DIR, `${CLUSTER_INSTANCE_ID}.log`), "utf8");
    expect(log).toMatch(/"msg":"store unavailable"/);
    for (const secret of secrets) expect(log.includes(secret), `a log line holds ${secret.slice(0, 4)}…`).toBe(false);
  });
});
