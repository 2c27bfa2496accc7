import { ErrorCode } from "@tether/shared";
import { agentSays } from "@tether/testkit/agent";
import { connectRaw, HandshakeRefused, login, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { freePort } from "@tether/testkit/ports";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "admission-test-api-key-0123456789";
const RATE = 5;

/** Admission control: a storm is turned into a ramp, and the load balancer hears it as a weight. */
describe("admission control", () => {
  let redis: TestRedis;
  let server: TestInstance;
  let agentPort: number;

  beforeAll(async () => {
    redis = await startRedis();
    agentPort = await freePort();
    server = await startInstance({
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_ADMISSION_HANDSHAKES_PER_SECOND: String(RATE),
      // The rate is this test's subject: a loaded CI box's event-loop lag must not refuse every handshake.
      TETHER_ADMISSION_MAX_EVENT_LOOP_DELAY: "5s",
      TETHER_AGENT_PORT: String(agentPort),
    });
  });

  afterAll(async () => {
    await server?.kill();
    await redis?.close();
  });

  it("past the handshake rate: UNAVAILABLE, retryable, with spread retryAfterMs hints; the agent lowers the weight", async () => {
    expect(await agentSays(agentPort)).toBe("up 100%");
    const session = await login(server.url, API_KEY);
    const tokens = await Promise.all(Array.from({ length: 4 * RATE }, () => wsToken(server.url, session)));
    const outcomes = await Promise.all(
      tokens.map((token) =>
        connectRaw(server.url, { token }, { retryBusy: false }).then(
          (socket) => {
            socket.close();
            return "ok" as const;
          },
          (err: unknown) => (err instanceof HandshakeRefused ? err.data : `not refused: ${String(err)}`),
        ),
      ),
    );
    const refused = outcomes.filter((o) => o !== "ok");
    expect(outcomes.filter((o) => o === "ok").length).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeGreaterThan(0);
    for (const data of refused) expect(data).toMatchObject({ code: ErrorCode.Unavailable, retryable: true });
    const hints = refused.map((data) => (data as { retryAfterMs?: number }).retryAfterMs);
    for (const hint of hints) expect(hint).toBeGreaterThan(0);
    expect(new Set(hints).size).toBeGreaterThan(1);
    expect(await agentSays(agentPort)).toMatch(/^up (\d|[1-9]\d)%$/);
    // The pressure passes: full weight again.
    await waitFor("full weight", async () => (await agentSays(agentPort)) === "up 100%", { timeoutMs: 5_000 });
  });
});
