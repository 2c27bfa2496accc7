import { nextClientAddress } from "@tether/testkit/address";
import { agentSays } from "@tether/testkit/agent";
import { connectRaw, login, wsToken } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { freePort } from "@tether/testkit/ports";
import { openRaw } from "@tether/testkit/raw";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "admission-order-api-key-0123456789";

/** The admission refusals the instance counted (tether_admission_refusals_total, every reason). */
async function admissionRefusals(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(/^tether_admission_refusals_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

/**
 * Cheapest first (issue 18, item 3): a credential-less client flooding Socket.IO
 * CONNECTs must not spend the instance's handshake budget. Its connection is
 * closed after a few attempts, its address is screened in process, and a
 * signed-in user elsewhere connects every time. Default limits, admission on.
 */
describe("admission in the right order", () => {
  let redis: TestRedis;
  let server: TestInstance;
  let agentPort: number;

  beforeAll(async () => {
    redis = await startRedis();
    agentPort = await freePort();
    server = await startInstance({
      REDIS_URL: redis.url,
      TETHER_API_KEY: API_KEY,
      TETHER_AGENT_PORT: String(agentPort),
    });
  });

  afterAll(async () => {
    await server?.kill();
    await redis?.close();
  });

  it("one WebSocket sending thousands of CONNECTs at once is closed, the rest of them unread", async () => {
    const raw = await openRaw(server.url);
    for (let i = 0; i < 3_000; i++) raw.send('40{"token":"x"}');
    await raw.closed;
    expect(raw.frames.filter((frame) => frame.startsWith("44")).length).toBeLessThanOrEqual(4);
  });

  it("CONNECTs one after another on one WebSocket: each refusal has its code, and the connection closes after the fourth", async () => {
    const raw = await openRaw(server.url);
    for (let attempt = 1; attempt <= 4; attempt++) {
      raw.send('40{"token":"x"}');
      const refusal = await waitFor(
        `refusal ${attempt}`,
        () => raw.frames.filter((f) => f.startsWith("44"))[attempt - 1],
      );
      expect(JSON.parse(refusal.slice(2))).toMatchObject({ data: { code: "TOKEN_INVALID", retryable: true } });
    }
    await raw.closed;
  });

  it("a flood of bad handshakes from one address spends none of the instance's budget: a user elsewhere connects every time", async () => {
    const attacker = nextClientAddress();
    const session = await login(server.url, API_KEY);
    const before = await admissionRefusals(server.url);
    let flooding = true;
    let sockets = 0;
    // Bounded: at most 300 connections of 20 CONNECTs each, for at most 4 s (one connection's
    // thousands are the case above).
    const flood = (async () => {
      const until = Date.now() + 4_000;
      while (flooding && Date.now() < until && sockets < 300) {
        const raw = await openRaw(server.url, undefined, {}, attacker).catch(() => undefined);
        if (!raw) continue;
        sockets += 1;
        for (let i = 0; i < 20 && raw.isOpen(); i++) raw.send(`40{"token":"${i % 2 ? "x" : "A".repeat(43)}"}`);
        // 20 CONNECTs are past the per-connection cap: the server closes it (the property under test).
        await waitFor("the server to close the flooding connection", () => !raw.isOpen(), { timeoutMs: 5_000 });
        raw.close();
      }
    })();
    const results: string[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        const socket = await connectRaw(server.url, { token: await wsToken(server.url, session) }).then(
          (s) => s,
          (err: { data?: { code?: string } }) => err,
        );
        if ("connected" in socket) {
          results.push("connected");
          socket.close();
        } else results.push(socket.data?.code ?? "closed");
      }
    } finally {
      flooding = false;
      await flood;
    }
    expect(results).toEqual(Array(10).fill("connected"));
    expect(sockets).toBeGreaterThan(0);
    expect(await admissionRefusals(server.url)).toBe(before);
    // The handshake rate never neared the budget (the event-loop delay may still have lowered it for a moment).
    await waitFor("full weight", async () => (await agentSays(agentPort)) === "up 100%", { timeoutMs: 5_000 });
    // Quiet period: the instance serves normally once the flood has stopped.
    await waitFor("a handshake after the flood", async () => {
      const socket = await connectRaw(server.url, { token: await wsToken(server.url, session) });
      socket.close();
      return true;
    });
  });
});
