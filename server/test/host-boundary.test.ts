import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ErrorCode } from "@tether/shared";
import { startClient, type TestClient } from "@tether/testkit/client";
import { post } from "@tether/testkit/http";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { nextEvent } from "@tether/testkit/wait";
import express, { type Express } from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTether, loadConfig, securityHeaders, type Tether, type TetherOptions } from "../src/index.js";

const METRICS_KEY = "metrics-key-0123456789";

const ALICE_KEY = "alice-key-0123456789";

/** The host's own users: any name with password "pw"; the client SDK's `login(key)` is alice's key. */
const login: TetherOptions["login"] = (req) => {
  const body = req.body as { user?: unknown; password?: unknown; apiKey?: unknown };
  if (body.apiKey === ALICE_KEY) return "alice";
  return typeof body.user === "string" && body.password === "pw" ? body.user : null;
};

interface HostApp {
  tether: Tether;
  url: string;
  close(): Promise<void>;
}

let redis: TestRedis;
const hosts: HostApp[] = [];
const clients: TestClient[] = [];

/** A host app: its own express app and HTTP server, with `mount` deciding what of Tether it uses. */
async function startHost(
  env: Record<string, string>,
  mount: (app: Express, tether: Tether) => void,
  options: Omit<TetherOptions, "config" | "login"> = {},
): Promise<HostApp> {
  const tether = await createTether({
    config: loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent", ...env }),
    login,
    ...options,
  });
  const app = express();
  app.use(express.json());
  mount(app, tether);
  const http: Server = createServer(app);
  tether.attach(http);
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const host = {
    tether,
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    close: () => tether.close(),
  };
  hosts.push(host);
  return host;
}

async function loginAs(url: string, user: string, headers: Record<string, string> = {}) {
  const res = await post(`${url}/api/auth/login`, { user, password: "pw" }, headers);
  expect(res.status).toBe(200);
  return {
    cookie: (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "",
    setCookie: res.headers.get("set-cookie"),
  };
}

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const t of clients) t.client.close();
  for (const host of hosts) await host.close();
  await redis?.close();
});

describe("tether.router in a host app: the contract without the demo or open ops", () => {
  let host: HostApp;
  beforeAll(async () => {
    host = await startHost(
      { TETHER_METRICS_KEY: METRICS_KEY, TETHER_ALLOWED_ORIGINS: "https://app.example" },
      (app, tether) => app.use(tether.router),
    );
  });

  it("does not carry the demo's POST /api/jobs into the host", async () => {
    const { cookie } = await loginAs(host.url, "alice");
    const job = await fetch(`${host.url}/api/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json", cookie },
      body: JSON.stringify({ steps: 10_000, intervalMs: 0 }),
    });
    expect(job.status).toBe(404);
    expect(host.tether.demoRouter).toBeUndefined();
  });

  it("keeps /metrics behind the bearer key when TETHER_METRICS_KEY is set", async () => {
    const open = await fetch(`${host.url}/metrics`);
    expect(open.status).toBe(401);
    expect(open.headers.get("www-authenticate")).toMatch(/^Bearer/);
    const wrong = await fetch(`${host.url}/metrics`, { headers: { authorization: "Bearer not-the-key-at-all" } });
    expect(wrong.status).toBe(401);
    const right = await fetch(`${host.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_KEY}` } });
    expect(right.status).toBe(200);
    expect(await right.text()).toContain("tether_connected_sockets");
    expect((await fetch(`${host.url}/healthz`)).status).toBe(200);
  });

  it("leaves the host's own /api routes alone: no CORS preflight answered for them", async () => {
    const preflight = (path: string) =>
      fetch(`${host.url}${path}`, {
        method: "OPTIONS",
        headers: { origin: "https://app.example", "access-control-request-method": "POST" },
      });
    expect((await preflight("/api/things")).headers.get("access-control-allow-origin")).toBeNull();
    expect((await preflight("/api/auth/login")).headers.get("access-control-allow-origin")).toBe("https://app.example");
  });
});

describe("behind a TLS-terminating proxy, without the host touching its own trust proxy", () => {
  it("sets Secure cookies from TETHER_TRUST_PROXY alone, and ignores X-Forwarded-Proto from untrusted peers", async () => {
    const host = await startHost({ TETHER_TRUST_PROXY: "loopback" }, (app, tether) => app.use(tether.router));
    expect((await loginAs(host.url, "alice", { "x-forwarded-proto": "https" })).setCookie).toMatch(/; Secure/);
    expect((await loginAs(host.url, "alice", { "x-forwarded-proto": "http" })).setCookie).not.toMatch(/Secure/);
    const untrusting = await startHost({}, (app, tether) => app.use(tether.router));
    expect((await loginAs(untrusting.url, "alice", { "x-forwarded-proto": "https" })).setCookie).not.toMatch(/Secure/);
  });
});

describe("separate routers", () => {
  it("auth on the public app, ops on an internal one (another port), security headers as one middleware", async () => {
    const host = await startHost({}, (app, tether) => {
      app.use(securityHeaders());
      app.use(tether.authRouter);
    });
    const ops = express().use(host.tether.opsRouter);
    const server = await new Promise<Server>((resolve) => {
      const listening: Server = ops.listen(0, "127.0.0.1", () => resolve(listening));
    });
    hosts.push({ ...host, close: () => new Promise((done) => server.close(() => done())) });
    const internal = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const res = await post(`${host.url}/api/auth/login`, { user: "alice", password: "pw" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect((await fetch(`${host.url}/metrics`)).status).toBe(404);
    expect((await fetch(`${host.url}/readyz`)).status).toBe(404);
    expect((await fetch(`${internal}/metrics`)).status).toBe(200);
    expect((await fetch(`${internal}/readyz`)).status).toBe(200);
  });
});

describe("the demo, behind its option: per-user job limits", () => {
  let host: HostApp;
  beforeAll(async () => {
    host = await startHost({}, (app, tether) => app.use(tether.router), { demo: true });
  });

  it("caps the jobs one user runs at once (RATE_LIMITED with Retry-After), not other users'", async () => {
    const { cookie } = await loginAs(host.url, "carol");
    const slow = { steps: 5, intervalMs: 60_000 };
    for (let i = 0; i < 3; i++) expect((await post(`${host.url}/api/jobs`, slow, { cookie })).status).toBe(202);
    const over = await post(`${host.url}/api/jobs`, slow, { cookie });
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ error: { code: ErrorCode.RateLimited } });
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    const other = await loginAs(host.url, "dave");
    expect((await post(`${host.url}/api/jobs`, slow, { cookie: other.cookie })).status).toBe(202);
  });

  it("caps the steps one user's jobs have left together", async () => {
    const { cookie } = await loginAs(host.url, "erin");
    expect((await post(`${host.url}/api/jobs`, { steps: 10_000, intervalMs: 60_000 }, { cookie })).status).toBe(202);
    const over = await post(`${host.url}/api/jobs`, { steps: 1, intervalMs: 0 }, { cookie });
    expect(over.status).toBe(429);
  });
});

describe("a base path", () => {
  let host: HostApp;
  beforeAll(async () => {
    host = await startHost({ TETHER_BASE_PATH: "/tether" }, (app, tether) => app.use(tether.router));
  });

  it("moves the routes and the Socket.IO path under it; the client follows with `basePath`", async () => {
    const atRoot = await fetch(`${host.url}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user: "alice", password: "pw" }),
    });
    expect(atRoot.status).toBe(404);
    expect(host.tether.socketPath).toBe("/tether/socket.io/");
    expect((await fetch(`${host.url}/socket.io/?EIO=4&transport=polling`)).status).toBe(404);
    const t = startClient(host.url, { basePath: "/tether" });
    clients.push(t);
    await t.client.login(ALICE_KEY);
    t.client.connect();
    await t.welcomed(1);
    const received = nextEvent<{ line: string }>(t.client, "build:log");
    await host.tether.publisher.publish({ user: "alice" }, "build:log", { line: "ok" });
    expect(await received).toMatchObject({ line: "ok" });
  });
});
