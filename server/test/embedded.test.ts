import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode } from "@tether/shared";
import { connectRaw, login, post, refusal, wsToken } from "@tether/testkit/http";
import { LOG_DIR, startInstance, type TestInstance } from "@tether/testkit/instance";
import { nextEvent } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** Embedded mode: no REDIS_URL, one instance, in-process stores, same contract. */
describe("embedded mode (no Redis)", () => {
  let server: TestInstance;
  let apiKey: string;

  beforeAll(async () => {
    server = await startInstance({ TETHER_INSTANCE_ID: `embedded-${process.pid}`, REDIS_URL: "" });
    const banner = readFileSync(join(LOG_DIR, `embedded-${process.pid}.log`), "utf8");
    apiKey = /API key \(generated[^)]*\): (\S+)/.exec(banner)?.[1] ?? "";
  });
  afterAll(async () => server?.kill());

  it("prints the generated API key and a loud warning that it cannot scale out", () => {
    const banner = readFileSync(join(LOG_DIR, `embedded-${process.pid}.log`), "utf8");
    expect(apiKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(banner).toMatch(/EMBEDDED MODE/);
    expect(banner).toMatch(/cannot scale beyond one instance/);
  });

  it("serves the same flow: login, single-use token, welcome, logout", async () => {
    const session = await login(server.url, apiKey);
    const token = await wsToken(server.url, session);
    const socket = await connectRaw(server.url, { token });
    expect((await refusal(server.url, { token })).data?.code).toBe(ErrorCode.TokenInvalid);
    const ended = nextEvent<{ reason: string }>(socket, "session:ended");
    await post(`${server.url}/api/auth/logout`, undefined, { cookie: session.cookie });
    expect(await ended).toEqual({ reason: "logout" });
    const after = await post(`${server.url}/api/auth/ws-token`, undefined, { cookie: session.cookie });
    expect(after.status).toBe(401);
  });

  it("reports ready with the embedded store", async () => {
    expect(await (await fetch(`${server.url}/readyz`)).json()).toEqual({
      status: "ready",
      store: "embedded",
      instance: expect.any(String),
    });
  });
});
