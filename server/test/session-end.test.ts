import { connectRaw, login, post, type TestSession, type WelcomedSocket, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { sessionRoom } from "../src/auth/keys.js";
import { topicChannel } from "../src/store/topic-bus.js";

const API_KEY = "session-end-test-api-key-0123456789";

/** The session id in a `tether.sid=s%3A<sid>.<signature>` cookie. */
const sidOf = (session: TestSession) =>
  decodeURIComponent(session.cookie.split("=")[1] ?? "")
    .slice(2)
    .split(".")[0];

describe("a session end reaches every socket even when Redis refuses the broadcast for a while", () => {
  let redis: TestRedis;
  let control: Redis;
  /** Checks its sessions often: it notices revocations itself. */
  let a: TestInstance;
  /** Checks its sessions once an hour: only the control message can end its sockets in this test. */
  let b: TestInstance;
  const sockets: WelcomedSocket[] = [];

  /** Redis refuses PUBLISH and SPUBLISH (the session's channel) until `allowPublish`: a blip that lasts as long as the test wants. */
  const denyPublish = () => control.call("ACL", "SETUSER", "default", "-publish", "-spublish");
  const allowPublish = () => control.call("ACL", "SETUSER", "default", "+publish", "+spublish");

  beforeAll(async () => {
    redis = await startRedis();
    control = redis.client();
    const env = { REDIS_URL: redis.url, TETHER_API_KEY: API_KEY };
    [a, b] = await Promise.all([
      startInstance({ ...env, TETHER_SESSION_CHECK_INTERVAL: "300ms" }),
      startInstance({ ...env, TETHER_SESSION_CHECK_INTERVAL: "1h" }),
    ]);
  });

  afterEach(async () => {
    await allowPublish();
    for (const s of sockets.splice(0)) s.close();
  });

  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.close();
  });

  async function socketsOnBoth(session: TestSession): Promise<[WelcomedSocket, WelcomedSocket]> {
    const onA = await connectRaw(a.url, { token: await wsToken(a.url, session) });
    const onB = await connectRaw(b.url, { token: await wsToken(b.url, session) });
    sockets.push(onA, onB);
    return [onA, onB];
  }

  const ended = (socket: WelcomedSocket, where: string, reason: string) =>
    waitFor(`session:ended ${reason} and a disconnect on ${where}`, () => {
      const got = socket.received.some(
        ([event, payload]) => event === "session:ended" && (payload as { reason?: string }).reason === reason,
      );
      if (!got || socket.connected)
        throw new Error(
          `saw ${JSON.stringify(socket.received.map(([event]) => event))}, connected: ${socket.connected}`,
        );
      return true;
    });

  it("a logout while the control publish fails: sockets here end at once, elsewhere once Redis takes it", async () => {
    const session = await login(a.url, API_KEY);
    const [onA, onB] = await socketsOnBoth(session);
    await denyPublish();
    expect((await post(`${a.url}/api/auth/logout`, undefined, { cookie: session.cookie })).status).toBe(204);
    // The logging-out instance needs no Redis to end its own sockets.
    await ended(onA, "A", "logout");
    expect(onB.connected).toBe(true);
    await allowPublish();
    await ended(onB, "B", "logout");
  });

  it("a session revoked in Redis while the control publish fails: the noticing instance ends it here and retries the rest", async () => {
    const session = await login(a.url, API_KEY);
    const [onA, onB] = await socketsOnBoth(session);
    await denyPublish();
    await control.del(`tether:sess:${sidOf(session)}`);
    await ended(onA, "A", "revoked");
    expect(onB.connected).toBe(true);
    await allowPublish();
    await ended(onB, "B", "revoked");
  });

  it("an end published while B's subscriber was cut: B finds the session gone once it is back, not at its next round", async () => {
    const session = await login(a.url, API_KEY);
    const onB = await connectRaw(b.url, { token: await wsToken(b.url, session) });
    sockets.push(onB);
    // A logout elsewhere as Redis cuts the subscriber connections (past the pub/sub output-buffer
    // limit): the session is deleted, and its end message goes out in the cut's transaction, to no one.
    await control.del(`tether:sess:${sidOf(session)}`);
    const replies = await control
      .multi()
      .call("CLIENT", "KILL", "TYPE", "pubsub")
      .call("SPUBLISH", topicChannel(sessionRoom(sidOf(session) ?? "")), JSON.stringify({ reason: "logout" }))
      .exec();
    expect(Number(replies?.[0]?.[1])).toBeGreaterThan(0);
    expect(replies?.[1]).toEqual([null, 0]);
    // The check of every session that follows the reconnect finds it (the lost message said "logout").
    await ended(onB, "B", "revoked");
  });
});
