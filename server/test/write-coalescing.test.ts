import type { Socket } from "node:net";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import type { Redis } from "ioredis";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRedis } from "../src/store/redis-connection.js";
import { recordWrites } from "./fixtures/socket-writes.js";

/** The writes Node hands the kernel on a connection's current socket (one `writev` or `write` each). */
function countWrites(client: Redis): string[] {
  return recordWrites((client as unknown as { stream: Socket }).stream);
}

/**
 * A command connection sends what one event-loop iteration asks for in one write (`coalesceWrites`),
 * instead of one write per command, and without ioredis's auto-pipelining: replies and their
 * order are unchanged, and a reconnected connection coalesces too.
 */
describe("one write per event-loop iteration on command connections", () => {
  let redis: TestRedis;
  let client: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    client = (await connectRedis(
      { mode: "standalone", url: redis.url },
      "commands",
      2_000,
      pino({ level: "silent" }),
    )) as Redis;
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.close();
  });

  it("twenty commands of one callback leave in one write, and each gets its own reply in order", async () => {
    const writes = countWrites(client);
    const replies = await Promise.all(Array.from({ length: 20 }, (_, n) => client.incrby("counter", n + 1)));
    expect(writes.length).toBe(1);
    // 1, 1+2, 1+2+3, …: the replies are each command's own, in the order sent.
    expect(replies).toEqual(Array.from({ length: 20 }, (_, n) => ((n + 1) * (n + 2)) / 2));
    await client.get("counter");
    expect(writes.length).toBe(2);
  });

  it("commands asked for by separate callbacks of one loop iteration leave in one write", async () => {
    const writes = countWrites(client);
    // Three timers due together fire in one timers phase, each its own callback (Node runs the
    // nextTick queue between them), as the handshakes whose frames arrive in one poll phase do.
    const replies = await Promise.all(
      Array.from(
        { length: 3 },
        () =>
          new Promise<number>((resolve, reject) => setTimeout(() => client.incr("timers").then(resolve, reject), 1)),
      ),
    );
    expect(replies.sort()).toEqual([1, 2, 3]);
    expect(writes.length).toBe(1);
  });

  it("a connection that Redis dropped coalesces again once reconnected", async () => {
    const before = (client as unknown as { stream: Socket }).stream;
    await client.client("KILL", "SKIPME", "no", "TYPE", "normal");
    await waitFor("reconnected on a new socket", async () => {
      const now = (client as unknown as { stream: Socket }).stream;
      return now !== before && client.status === "ready" && (await client.ping().catch(() => "")) === "PONG";
    });
    const writes = countWrites(client);
    const replies = await Promise.all(Array.from({ length: 10 }, () => client.incr("after")));
    expect(replies).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(writes.length).toBe(1);
  });
});
