// Redis configured to lose Tether's state — persistence off, or an eviction
// policy other than noeviction — is found at start and after every reconnect:
// a loud warning with the fix in the log, tether_redis_unsafe_config{check} = 1,
// and the details in /readyz's body, which stays 200 (a warning, not an outage).
// Where CONFIG is refused (managed Redis), the instance says once that it
// could not check.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { LOG_DIR, startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterEach, describe, expect, it } from "vitest";

let counter = 0;
const opened: { redis?: TestRedis; instance?: TestInstance }[] = [];

afterEach(async () => {
  for (const { redis, instance } of opened.splice(0)) {
    await instance?.stop();
    await redis?.close();
  }
});

/** A Redis started with `args` and one instance on it; its log file's text on demand. */
async function setup(options: { persistence?: boolean; args?: string[] }) {
  const redis = await startRedis(options);
  const name = `redis-safety-${process.pid}-${++counter}`;
  const instance = await startInstance({ REDIS_URL: redis.url, TETHER_INSTANCE_ID: name });
  opened.push({ redis, instance });
  const log = () => readFileSync(join(LOG_DIR, `${name}.log`), "utf8");
  const metric = async (check: string) => {
    const text = await (await fetch(`${instance.url}/metrics`)).text();
    return new RegExp(`^tether_redis_unsafe_config\\{check="${check}"\\} (\\d+)$`, "m").exec(text)?.[1];
  };
  const ready = async () => {
    const res = await fetch(`${instance.url}/readyz`);
    return { status: res.status, body: (await res.json()) as { redisConfig?: Record<string, unknown> } };
  };
  return { redis, instance, log, metric, ready };
}

describe("Redis safety checks", () => {
  it("persistence off and an evicting policy: warned with the fix, in the metric, and in /readyz (still 200)", async () => {
    const t = await setup({ persistence: false, args: ["--maxmemory-policy", "allkeys-lru"] });
    await waitFor("both warnings in the log", () => t.log().includes("maxmemory-policy is allkeys-lru"));
    expect(t.log()).toContain("Redis persistence is off");
    expect(t.log()).toContain("Fix: run redis-server with --appendonly yes");
    expect(t.log()).toContain("Fix: --maxmemory-policy noeviction");
    expect(await t.metric("persistence")).toBe("1");
    expect(await t.metric("eviction")).toBe("1");
    const { status, body } = await t.ready();
    expect(status).toBe(200);
    expect(body.redisConfig).toMatchObject({ checked: true, persistence: "off", maxmemoryPolicy: "allkeys-lru" });
    expect(body.redisConfig?.warnings).toHaveLength(2);
  });

  it("AOF and noeviction (what compose ships): no warning, the metric at 0", async () => {
    const t = await setup({ persistence: true, args: ["--maxmemory-policy", "noeviction"] });
    expect(await t.metric("persistence")).toBe("0");
    expect(await t.metric("eviction")).toBe("0");
    const { status, body } = await t.ready();
    expect(status).toBe(200);
    expect(body.redisConfig).toEqual({
      checked: true,
      persistence: "aof",
      maxmemoryPolicy: "noeviction",
      warnings: [],
    });
    expect(t.log()).not.toMatch(/Redis persistence is off|maxmemory-policy is/);
  });

  it("a fix applied at run time is seen after the next reconnect", async () => {
    const t = await setup({ persistence: true, args: ["--maxmemory-policy", "volatile-lru"] });
    expect(await t.metric("eviction")).toBe("1");
    const admin = t.redis.client();
    await admin.config("SET", "maxmemory-policy", "noeviction");
    // Cut Tether's connections; they come back at once and check again.
    await admin.client("KILL", "TYPE", "normal");
    // /readyz may answer not-ready for a moment while the cut connections come back: wait for both.
    await waitFor(
      "the metric back at 0, and /readyz saying so",
      async () =>
        (await t.metric("eviction")) === "0" && (await t.ready()).body.redisConfig?.maxmemoryPolicy === "noeviction",
    );
    expect((await t.ready()).body.redisConfig).toMatchObject({ maxmemoryPolicy: "noeviction", warnings: [] });
  });

  it("CONFIG refused (a managed Redis): says once that it could not check, and stays ready", async () => {
    const t = await setup({ persistence: false, args: ["--rename-command", "CONFIG", ""] });
    await waitFor("the could-not-check line", () => t.log().includes("could not check Redis's configuration"));
    const { status, body } = await t.ready();
    expect(status).toBe(200);
    expect(body.redisConfig).toMatchObject({ checked: false });
    expect(await t.metric("persistence")).toBeUndefined();
    // A Redis restart reconnects (and checks again) without saying it twice.
    await t.redis.stop();
    await t.redis.start();
    await waitFor("ready again after the Redis restart", async () => (await t.ready()).status === 200, {
      timeoutMs: 15_000,
    });
    expect(t.log().split("could not check Redis's configuration")).toHaveLength(2);
  });
});
