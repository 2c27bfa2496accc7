import { ErrorCode } from "@tether/shared";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { type Redis, ReplyError } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TetherError, toTetherError } from "../src/errors.js";
import { serializeError } from "../src/observability/logger.js";

const SECRET = "tether:wstok:0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

/** What a real Redis call rejects with. */
async function rejection(call: Promise<unknown>): Promise<Error> {
  try {
    await call;
  } catch (err) {
    return err as Error;
  }
  throw new Error("the call succeeded");
}

describe("error classification and the log serializer", () => {
  let redis: TestRedis;
  let client: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    client = redis.client();
  });
  afterAll(async () => {
    await redis?.close();
  });

  it("a Lua error and a wrong type are bugs: INTERNAL", async () => {
    const lua = await rejection(client.eval("return redis.call('nosuchcommand')", 0));
    expect(toTetherError(lua).code).toBe(ErrorCode.Internal);
    await client.set("a-string", "x");
    const wrongType = await rejection(client.lpush("a-string", "y"));
    expect(toTetherError(wrongType).code).toBe(ErrorCode.Internal);
  });

  it("availability replies are UNAVAILABLE, retryable, also from inside a script", async () => {
    await client.config("SET", "maxmemory-policy", "noeviction");
    await client.config("SET", "maxmemory", "1");
    try {
      const fromScript = await rejection(client.eval("return redis.call('set', KEYS[1], 'x')", 1, SECRET));
      expect(fromScript.message).toMatch(/^OOM/);
      const error = toTetherError(fromScript);
      expect(error.code).toBe(ErrorCode.Unavailable);
      expect(error.retryable).toBe(true);
      // A MULTI refused whole because of them (rate-limiter-flexible reads through one).
      const aborted = await rejection(client.multi().set(SECRET, "x").pttl(SECRET).exec());
      expect(toTetherError(aborted).code).toBe(ErrorCode.Unavailable);
    } finally {
      await client.config("SET", "maxmemory", "0");
    }
  });

  // TRYAGAIN needs a multi-key command caught mid-resharding, which no test can time for
  // real; CLUSTERDOWN is produced for real in redis-errors.test.ts. Here: their reply shapes.
  it.each([
    "TRYAGAIN Multiple keys request during rehashing of slot",
    "CLUSTERDOWN The cluster is down",
    "CLUSTERDOWN Hash slot not served",
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    "LOADING Redis is loading the dataset in memory",
    "READONLY You can't write against a read only replica.",
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    // A redirect the Cluster client did not follow (a pipeline mid-failover): the slot moved, retry.
    "MOVED 4489 127.0.0.1:43477",
    "ASK 4489 127.0.0.1:43477",
  ])("%s → UNAVAILABLE", (reply) => {
    expect(toTetherError(new ReplyError(reply)).code).toBe(ErrorCode.Unavailable);
  });

  it("a pipeline's command left unanswered when its connection closes (a failover's cut) is UNAVAILABLE", async () => {
    const victim = redis.client();
    const id = await victim.client("ID");
    // The first command is answered, the second still blocks when the connection is killed.
    const pending = victim.pipeline().ping().blpop("never-pushed", 0).exec();
    await waitFor("the pipeline's second command to block", async () =>
      /blocked_clients:[1-9]/.test(await client.info("clients")),
    );
    await client.client("KILL", "ID", String(id));
    const results = await pending;
    const aborted = results?.[1]?.[0];
    expect(aborted?.message).toBe("Command aborted due to connection close");
    expect(toTetherError(aborted).code).toBe(ErrorCode.Unavailable);
    victim.disconnect();
  });

  it("ERR replies that merely mention a code are not availability errors", () => {
    expect(toTetherError(new ReplyError("ERR user_script:1: READONLY is not a global")).code).toBe(ErrorCode.Internal);
  });

  it("a logged ioredis error shows its command's name, never its arguments", async () => {
    const err = await rejection(client.call("NOSUCHCOMMAND", SECRET, "more"));
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).toContain(SECRET);
    const wrapped = new TetherError(ErrorCode.Internal, undefined, { cause: err });
    const logged = JSON.stringify(serializeError(wrapped));
    expect(logged).not.toContain(SECRET);
    expect(logged).not.toContain('"args"');
    expect(serializeError(err)).toMatchObject({ type: "ReplyError", command: "NOSUCHCOMMAND" });
  });

  it("an error with any other shape is logged by its allowed fields only", () => {
    const odd = Object.assign(new Error("boom"), {
      code: "E_ODD",
      req: { headers: { cookie: SECRET } },
      args: [SECRET],
    });
    expect(serializeError(odd)).toEqual({ type: "Error", message: "boom", code: "E_ODD", stack: odd.stack });
    expect(serializeError({ token: SECRET })).toEqual({ type: "object", message: "(not an Error)" });
  });
});
