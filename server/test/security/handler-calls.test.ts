import { resolve } from "node:path";
import { ErrorCode } from "@tether/shared";
import { connectRaw, login, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "handler-calls-api-key-0123456789abc";
const HOST = resolve(import.meta.dirname, "../fixtures/hostile-host.ts");
/** The default calls in flight per user (TETHER_MAX_CALLS_PER_USER); per socket the default is 16. */
const PER_USER = 64;

interface SlowStats {
  running: number;
  started: number;
  aborted: number;
  reasons: string[];
}

/**
 * Handler calls in flight are bounded per socket and per user, each has a
 * deadline, and its abort signal fires on that deadline and when the socket
 * goes (issue 18, item 7): once every socket has closed, nothing of the user's
 * is still running.
 */
describe("handler calls: bounded, with a deadline, and cancelled with their socket", () => {
  let redis: TestRedis;
  let server: TestInstance;
  let observer: WelcomedSocket;
  const opened: WelcomedSocket[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    server = await startInstance(
      // A short deadline for the timeout case; the in-flight bounds keep their defaults.
      { REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_HANDLER_TIMEOUT: "3s" },
      { main: HOST },
    );
    observer = await connectRaw(server.url, { token: await wsToken(server.url, await login(server.url, API_KEY)) });
  });

  afterAll(async () => {
    for (const socket of [observer, ...opened]) socket?.close();
    await server?.kill();
    await redis?.close();
  });

  const stats = async () => {
    const reply = (await observer.timeout(5_000).emitWithAck("test:stats", {})) as { ok: true; result: SlowStats };
    return reply.result;
  };

  it("3 logins × 2 sockets of one user calling a slow handler: at most the bounds run, the rest are refused, all stop with their sockets", async () => {
    for (let s = 0; s < 3; s++) {
      const session = await login(server.url, API_KEY);
      for (let i = 0; i < 2; i++)
        opened.push(await connectRaw(server.url, { token: await wsToken(server.url, session) }));
    }
    // 20 calls per socket (120 in all): 6 × 16 would pass the per-socket bound, so the per-user
    // bound (64) decides. Each reply settles to its ack, or to the error of the socket closed under
    // it. (The observer is the same user: it asks for stats only once the user's calls have gone.)
    let refusedSoFar = 0;
    const replies: Promise<unknown>[] = [];
    for (const socket of opened)
      for (let i = 0; i < 20; i++)
        replies.push(
          socket
            .timeout(20_000)
            .emitWithAck("slow", {})
            .then(
              (reply: { error?: { code?: string } }) => {
                if (reply.error?.code === ErrorCode.RateLimited) refusedSoFar += 1;
                return reply;
              },
              (err: Error) => err,
            ),
        );
    await waitFor("the calls over the user's bound to be refused at once", () => refusedSoFar >= 120 - PER_USER);
    for (const socket of opened) socket.close();
    const after = await waitFor("every slow call to see its signal abort", async () => {
      const current = await stats();
      return current.running === 0 && current.started > 0 ? current : undefined;
    });
    // Exactly the bound ran, never more, and every one of them was aborted when its socket went.
    expect(after.started).toBe(PER_USER);
    expect(after.aborted).toBe(PER_USER);
    expect(after.reasons).toEqual(["The connection closed."]);
    const answered = await Promise.all(replies);
    expect(
      answered.filter((r) => (r as { error?: { code?: string } }).error?.code === ErrorCode.RateLimited),
    ).toHaveLength(120 - PER_USER);
    opened.length = 0;
  });

  it("a call past its deadline: UNAVAILABLE to the client, and its handler's signal aborted", async () => {
    const socket = await connectRaw(server.url, { token: await wsToken(server.url, await login(server.url, API_KEY)) });
    opened.push(socket);
    const before = await stats();
    const reply = await socket.timeout(10_000).emitWithAck("slow", {});
    expect(reply).toEqual({
      ok: false,
      error: { code: ErrorCode.Unavailable, message: "The handler did not answer in time." },
    });
    const after = await waitFor("the timed-out call's handler to stop", async () => {
      const current = await stats();
      return current.running === 0 && current.aborted > before.aborted ? current : undefined;
    });
    expect(after.reasons).toContain("The handler did not answer in time.");
  });
});
