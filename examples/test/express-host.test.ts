import { createTetherClient, type FetchLike, SessionEndReason, type TetherClient } from "@tether/client";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { nextEvent, waitFor } from "@tether/testkit/wait";
import fetchCookie from "fetch-cookie";
import { CookieJar } from "tough-cookie";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HostApp, startHostApp } from "../express-host/src/app.js";

/** The express host example, against a real redis-server: its own login, rooms, its own webhook publishing. */
describe("examples/express-host", () => {
  let redis: TestRedis;
  let app: HostApp;
  const clients: TetherClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    app = await startHostApp({
      PORT: "0",
      HOST: "127.0.0.1",
      REDIS_URL: redis.url,
      HOOK_SECRET: "example-hook-secret",
      APP_SECRET: "example-app-secret",
      TETHER_SESSION_SECRET: "example-session-secret-0123456789",
      TETHER_DRAIN_WINDOW: "100ms",
      LOG_LEVEL: "warn",
    });
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await app?.close();
    await redis?.close();
  });

  /** The Node client with a cookie jar shared with the app's own login request. */
  function signedInClient(username: string, password: string) {
    const cookieFetch = fetchCookie(fetch, new CookieJar()) as unknown as FetchLike;
    const client = createTetherClient({ url: app.url, fetch: cookieFetch, transports: ["websocket"] });
    clients.push(client);
    const login = () =>
      cookieFetch(`${app.url}/api/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username, password }),
      });
    return { client, login };
  }

  it("refuses a wrong password with 401 and leaves the app's own routes alone", async () => {
    const { login } = signedInClient("alice", "wrong");
    expect((await login()).status).toBe(401);
    const hello = await fetch(`${app.url}/api/hello`);
    expect(await hello.json()).toEqual({ hello: "from the host app" });
  });

  it("logs in with the app's own check, connects, and gets the app's room events", async () => {
    const { client, login } = signedInClient("bob", "hunter2 hunter2");
    expect((await login()).status).toBe(200);
    expect((await client.session()).authenticated).toBe(true);
    const deploys: { version: string; room?: string }[] = [];
    // The app's own events are not in the protocol's event map: listen on the socket.
    client.socket.onAny((event: string, payload: { version: string; room?: string }) => {
      if (event === "deploy:finished") deploys.push(payload);
    });
    client.connect();
    await waitFor("connected", () => client.state === "connected");

    const hook = await fetch(`${app.url}/hooks/deploy`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-hook-secret": "example-hook-secret" },
      body: JSON.stringify({ team: "red", version: "1.2.3" }),
    });
    expect(hook.status).toBe(202);
    await waitFor("the deploy event", () => deploys.length === 1);
    expect(deploys[0]).toMatchObject({ version: "1.2.3", room: "team:red" });
  });

  it("signs in with the app's own access token: getToken from the app's route, no Tether cookie, logout ends it", async () => {
    const signIn = await fetch(`${app.url}/app/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "alice", password: "correct horse battery staple" }),
    });
    const { accessToken } = (await signIn.json()) as { accessToken: string };
    const setCookies: string[] = [];
    const authorization = `Bearer ${accessToken}`;
    const client = createTetherClient({
      url: app.url,
      transports: ["websocket"],
      getToken: async () => {
        const res = await fetch(`${app.url}/app/tether-token`, { headers: { authorization } });
        setCookies.push(...res.headers.getSetCookie());
        if (!res.ok) throw Object.assign(new Error(`token route: ${res.status}`), { status: res.status });
        return (await res.json()) as { token: string; expiresAt: number };
      },
    });
    clients.push(client);
    client.connect();
    await waitFor("connected", () => client.state === "connected");
    const done = nextEvent<{ jobId: string }>(client, "job:done");
    await app.tether.publisher.publish({ user: "alice" }, "job:done", { jobId: "for-alice" });
    expect(await done).toMatchObject({ jobId: "for-alice" });

    const ended = nextEvent<{ reason: string }>(client, "session:ended");
    expect((await fetch(`${app.url}/app/logout`, { method: "POST", headers: { authorization } })).status).toBe(204);
    expect(await ended).toEqual({ reason: SessionEndReason.Logout });
    await waitFor("unauthenticated", () => client.state === "unauthenticated");
    // The access token is still validly signed, but its Tether session is over.
    const after = await fetch(`${app.url}/app/tether-token`, { headers: { authorization } });
    expect(after.status).toBe(401);
    expect(setCookies).toEqual([]);
  });
});
