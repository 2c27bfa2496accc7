import type { RecoveryPayload } from "@tether/shared";
import { startClient, type TestClient } from "@tether/testkit/client";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { idleFor, nextEvent, waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublisher, loadConfig, type WorkerPublisher } from "../src/index.js";

const API_KEY = "recovery-limits-test-api-key-0123456789";

/** A stream's Redis, an instance on it and a worker publisher, all with the recovery settings `env`. */
function recoverySetup(env: Record<string, string>) {
  const setup = {} as { redis: TestRedis; server: TestInstance; publisher: WorkerPublisher };
  beforeAll(async () => {
    setup.redis = await startRedis();
    setup.server = await startInstance({ REDIS_URL: setup.redis.url, TETHER_API_KEY: API_KEY, ...env });
    setup.publisher = await createPublisher(loadConfig({ REDIS_URL: setup.redis.url, LOG_LEVEL: "silent", ...env }));
  });
  afterAll(async () => {
    await setup.publisher?.close();
    await setup.server?.kill();
    await setup.redis?.close();
  });
  return setup;
}

/** A client that saw one event, then was away while `publish` ran: the recovery it gets on coming back. */
async function awayWhile(
  { server, publisher }: { server: TestInstance; publisher: WorkerPublisher },
  publish: () => Promise<void>,
): Promise<{ recovery: RecoveryPayload; t: TestClient }> {
  const t = startClient(server.url);
  await t.client.login(API_KEY);
  t.client.connect();
  await t.welcomed(1);
  await publisher.publish({ user: "admin" }, "job:done", { jobId: "seen" });
  await waitFor("the first event", () => t.client.lastOffset !== t.welcomes[0]?.offset);
  t.client.close();
  await publish();
  const recovery = new Promise<RecoveryPayload>((resolve) => t.client.once("recovery", resolve));
  t.client.connect();
  return { recovery: await recovery, t };
}

describe("recovery limits: the window", () => {
  const setup = recoverySetup({ TETHER_RECOVERY_WINDOW: "1s", TETHER_RECOVERY_MAX_EVENTS: "100" });

  it("an offset older than the recovery window: recovered:false reaches the app, and the next reconnect starts afresh", async () => {
    const { recovery, t } = await awayWhile(setup, async () => {
      await setup.publisher.publish({ user: "admin" }, "job:done", { jobId: "missed" });
      await idleFor(1_500);
    });
    expect(recovery.recovered).toBe(false);
    expect(recovery.missed).toBeGreaterThanOrEqual(1);
    expect(recovery.reason).toBe("trimmed");
    t.client.socket.io.engine.close();
    const again = await nextEvent<RecoveryPayload>(t.client, "recovery");
    expect(again).toEqual({ recovered: true, missed: 0 });
    t.client.close();
  });

  it("events lost when the stream expired are not hidden by one published after (recovered:true while events were missing)", async () => {
    const { recovery, t } = await awayWhile(setup, async () => {
      await setup.publisher.publish({ user: "admin" }, "job:done", { jobId: "lost-1" });
      await setup.publisher.publish({ user: "admin" }, "job:done", { jobId: "lost-2" });
      // The stream key expires a window after its last event; only its meta hash stays.
      await waitFor(
        "the stream to expire",
        async () => (await setup.redis.client().exists("tether:stream:{user:admin}")) === 0,
        { timeoutMs: 15_000 },
      );
      await setup.publisher.publish({ user: "admin" }, "job:done", { jobId: "after" });
    });
    expect(recovery).toMatchObject({ recovered: false, reason: "trimmed" });
    t.client.close();
  });
});

// The default window (10 min): on a slow machine the 150 publishes and the reconnect may take longer
// than a short window, and a stream that expired meanwhile says `missed: 1`, not what the cap dropped.
describe("recovery limits: the cap on events", () => {
  const setup = recoverySetup({ TETHER_RECOVERY_MAX_EVENTS: "100" });

  it("more events than the stream keeps: recovered:false with what is known to be missed, never a partial replay", async () => {
    let got = 0;
    const { recovery, t } = await awayWhile(setup, async () => {
      for (let step = 1; step <= 150; step++) {
        await setup.publisher.publish({ user: "admin" }, "job:progress", { jobId: "overflow", step, steps: 150 });
      }
    });
    t.client.on("job:progress", () => {
      got += 1;
    });
    expect(recovery).toEqual({ recovered: false, missed: 100, offset: expect.any(String), reason: "trimmed" });
    expect(await t.client.echo("after")).toBe("after");
    expect(got).toBe(0);
    t.client.close();
  });
});
