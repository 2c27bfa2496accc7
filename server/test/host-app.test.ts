import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ErrorCode } from "@tether/shared";
import { connectRaw, post, refusal } from "@tether/testkit/http";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { nextEvent } from "@tether/testkit/wait";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTether, loadConfig, type Tether } from "../src/index.js";

/** The library use: a host app mounts Tether on its own express app and HTTP server, with its own login check. */
describe("createTether mounted in a host app", () => {
  let redis: TestRedis;
  let tether: Tether;
  let http: Server;
  let url: string;

  beforeAll(async () => {
    redis = await startRedis();
    const app = express();
    app.use(express.json());
    app.get("/host/hello", (_req, res) => void res.json({ hello: "from the host" }));
    tether = await createTether({
      config: loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent" }),
      // The host's own users: "alice" with password "wonderland".
      login: (req) => {
        const body = req.body as { user?: unknown; password?: unknown };
        return body.user === "alice" && body.password === "wonderland" ? "alice" : null;
      },
    });
    app.use(tether.router);
    http = createServer(app);
    tether.attach(http);
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await tether?.close();
    await redis?.close();
  });

  async function loginAsAlice() {
    const res = await fetch(`${url}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user: "alice", password: "wonderland" }),
    });
    expect(res.status).toBe(200);
    return (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  }

  it("keeps the host's own routes working", async () => {
    expect(await (await fetch(`${url}/host/hello`)).json()).toEqual({ hello: "from the host" });
  });

  it("uses the host's login check: its users in, the API key and wrong passwords out", async () => {
    expect((await post(`${url}/api/auth/login`, { user: "alice", password: "nope" })).status).toBe(401);
    const withKey = await post(`${url}/api/auth/login`, { apiKey: tether.apiKey });
    expect(withKey.body).toMatchObject({ error: { code: ErrorCode.InvalidCredentials } });
    expect(await loginAsAlice()).toMatch(/^tether\.sid=/);
  });

  it("connects a socket as the host's user and delivers events published to that user", async () => {
    const cookie = await loginAsAlice();
    const token = ((await post(`${url}/api/auth/ws-token`, undefined, { cookie })).body as { token: string }).token;
    const socket = await connectRaw(url, { token });
    const received = nextEvent<{ jobId: string; offset: string }>(socket, "job:done");
    const offset = await tether.publisher.publish({ user: "alice" }, "job:done", { jobId: "host-job" });
    expect(await received).toEqual({ jobId: "host-job", offset });
    socket.close();
  });

  it("a token is single use here too", async () => {
    const cookie = await loginAsAlice();
    const token = ((await post(`${url}/api/auth/ws-token`, undefined, { cookie })).body as { token: string }).token;
    (await connectRaw(url, { token })).close();
    expect((await refusal(url, { token })).data?.code).toBe(ErrorCode.TokenInvalid);
  });
});
