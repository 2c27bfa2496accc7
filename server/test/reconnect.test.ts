import { startClient } from "@tether/testkit/client";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startProxy, type TestProxy } from "@tether/testkit/proxy";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { idleFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "reconnect-test-api-key-0123456789";
const TOKEN_TTL_MS = 1_000;

describe("a client that re-authenticates on every reconnect", () => {
  let redis: TestRedis;
  let a: TestInstance;
  let b: TestInstance;
  let proxy: TestProxy;

  beforeAll(async () => {
    redis = await startRedis();
    const env = { REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_WS_TOKEN_TTL: `${TOKEN_TTL_MS}ms` };
    [a, b] = await Promise.all([startInstance(env), startInstance(env)]);
    proxy = await startProxy([a.port, b.port]);
  });

  afterAll(async () => {
    await proxy?.close();
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.close();
  });

  it("200 reconnects in a row each use a fresh token, and none ends unauthenticated", async () => {
    // Tokens are what this test is about: resume tickets (which replace them on reconnects) are off.
    const t = startClient(a.url, { resumeTickets: false });
    const failures: string[] = [];
    // "<code> <HTTP status, or ws for a refused handshake>"
    t.client.on("error", (err) => failures.push(`${err.code} ${err.status ?? "ws"}`));
    await t.client.login(API_KEY);
    t.client.connect();
    await t.welcomed(1);
    for (let i = 2; i <= 201; i++) {
      // Drop the transport, as a network blip does: the client must come back by itself.
      t.client.socket.io.engine.close();
      await t.welcomed(i);
    }
    // A fresh token per handshake. The default per-session limits stay on: a burst of
    // reconnects faster than 60 per 3 s is refused (RATE_LIMITED, retried after its hint),
    // either at the token request (429: no token) or at the handshake (its token is spent);
    // on a loaded machine a token may also outlive its 1 s TTL before its handshake
    // (TOKEN_INVALID, fetched again at once). Nothing else may fail.
    const refused = failures.filter((failure) => !failure.startsWith("DISCONNECTED"));
    for (const failure of refused) expect(failure).toMatch(/^(RATE_LIMITED (429|ws)|TOKEN_INVALID ws)$/);
    const refusedHandshakes = refused.filter((failure) => failure.endsWith(" ws")).length;
    expect(t.tokens.length).toBe(201 + refusedHandshakes);
    expect(new Set(t.tokens).size).toBe(t.tokens.length);
    expect(t.states).not.toContain("unauthenticated");
    t.client.close();
  });

  it("reconnects with no new login after the token TTL has long passed", async () => {
    const t = startClient(a.url);
    await t.client.login(API_KEY);
    t.client.connect();
    await t.welcomed(1);
    // The scenario itself is time: idle for three token lifetimes.
    await idleFor(3 * TOKEN_TTL_MS);
    t.client.socket.io.engine.close();
    await t.welcomed(2);
    expect(t.states).not.toContain("unauthenticated");
    t.client.close();
  });

  it("kill -9 of the instance a client is on: it lands on the other one without a new login", async () => {
    const t = startClient(proxy.url);
    await t.client.login(API_KEY);
    t.client.connect();
    const first = await t.welcomed(1);
    const victim = first.instance === (await instanceName(a)) ? a : b;
    await victim.kill();
    const second = await t.welcomed(2);
    expect(second.instance).not.toBe(first.instance);
    expect(t.states).not.toContain("unauthenticated");
    expect(await t.client.echo("still me")).toBe("still me");
    t.client.close();
    await victim.restart();
  });
});

/** An instance's id, as `welcome` reports it. */
async function instanceName(instance: TestInstance): Promise<string> {
  const t = startClient(instance.url);
  await t.client.login(API_KEY);
  t.client.connect();
  const welcome = await t.welcomed(1);
  t.client.close();
  return welcome.instance;
}
