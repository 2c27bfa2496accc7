// The local cluster (`npm run cluster`): Redis, three instances and the real
// HAProxy with deploy/haproxy.cfg, terminating TLS with a self-signed
// certificate. The real client logs in and connects through the load balancer
// over HTTPS and WSS, and over long-polling (which only works with sticky
// routing); HAProxy is reloaded and restarted under connected clients; a full
// stop leaves no process behind.
import { join } from "node:path";
import type { JobProgressPayload } from "@tether/shared";
import { fetchFrom, nextClientAddress } from "@tether/testkit/address";
import { startClient, type TestClient } from "@tether/testkit/client";
import { FAST_ENV, LOG_DIR } from "@tether/testkit/instance";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Cluster, SOURCE_COMMAND, startCluster } from "../../scripts/cluster/start.mjs";
import { createPublisher, loadConfig, type WorkerPublisher } from "../../server/src/index.js";

const INSTANCES = ["tether1", "tether2", "tether3"];
/** Short intervals, and a short drain so restarts take a moment. */
const CLUSTER_ENV = { ...FAST_ENV, TETHER_DRAIN_WINDOW: "300ms" };
/** A reloaded HAProxy's old process cuts the WebSockets it still holds after this (30 s in production). */
const HARD_STOP_AFTER = "1s";

/** Is a process with this pid still there (zombies included)? */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("npm run cluster's topology, driven from a test", () => {
  let cluster: Cluster;
  /** A client that trusts the cluster's certificate, and nothing more. */
  const client = (options: Parameters<typeof startClient>[1] = {}) =>
    startClient(cluster.url, { ca: cluster.ca, ...options });
  const https = () => fetchFrom(nextClientAddress(), { ca: cluster.ca });

  beforeAll(async () => {
    // Logs beside every other test instance's (LOG_DIR), where they stay for reading.
    const logDir = join(LOG_DIR, `cluster-${process.pid}`);
    cluster = await startCluster({
      instances: 3,
      command: SOURCE_COMMAND,
      env: CLUSTER_ENV,
      lbEnv: { LB_HARD_STOP_AFTER: HARD_STOP_AFTER },
      logDir,
    });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it("HAProxy sees every instance UP and answers /readyz over HTTPS through one of them", async () => {
    expect(cluster.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect((await cluster.lb.servers()).map(({ name, status, addr }) => ({ name, status, addr }))).toEqual(
      cluster.instances.map(({ name, port }) => ({ name, status: "UP", addr: `127.0.0.1:${port}` })),
    );
    const res = await https()(`${cluster.url}/readyz`);
    expect(res.status).toBe(200);
    // Dynamic: a hash of the instance's address, not a slot name.
    expect(res.headers.get("set-cookie")).toMatch(/^SERVERID=[0-9a-f]{16}; path=\/; HttpOnly; SameSite=Lax$/);
  });

  it("plain HTTP redirects to HTTPS (same path, method kept), and HTTPS answers with HSTS", async () => {
    const plain = await fetchFrom(nextClientAddress())(`${cluster.httpUrl}/api/auth/login?from=test`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(plain.status).toBe(308);
    expect(plain.headers.get("location")).toBe(`${cluster.url}/api/auth/login?from=test`);
    expect(plain.headers.get("strict-transport-security")).toBeNull();
    const secure = await https()(`${cluster.url}/healthz`);
    expect(secure.headers.get("strict-transport-security")).toBe("max-age=31536000");
  });

  it("end to end over TLS: the session cookie is Secure, and the real client is welcomed over WSS", async () => {
    const login = await https()(`${cluster.url}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ apiKey: cluster.apiKey }),
    });
    expect(login.status).toBe(200);
    const cookie = login.headers.getSetCookie().find((line) => line.startsWith("tether.sid="));
    expect(cookie).toMatch(/; Secure(;|$)/);
    // The same instance reached directly over plain HTTP sets no Secure flag: HAProxy's X-Forwarded-Proto made it.
    const direct = await fetchFrom(nextClientAddress())(`${cluster.instances[0]?.url}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ apiKey: cluster.apiKey }),
    });
    expect(direct.headers.getSetCookie().find((line) => line.startsWith("tether.sid="))).not.toMatch(/Secure/);

    const t = client();
    await t.client.login(cluster.apiKey);
    expect(t.jar.getCookiesSync(cluster.url).find((each) => each.key === "tether.sid")?.secure).toBe(true);
    t.client.connect();
    const welcome = await t.welcomed(1);
    expect(INSTANCES).toContain(welcome.instance);
    expect(t.client.socket.io.engine.transport.name).toBe("websocket");
    expect(await t.client.echo({ hello: "cluster" })).toEqual({ hello: "cluster" });
    t.client.close();
  });

  it("long-polling works through HAProxy: the SERVERID cookie keeps one Engine.IO session on one instance", async () => {
    const t = client({ transports: ["polling"] });
    await t.client.login(cluster.apiKey);
    t.client.connect();
    const welcome = await t.welcomed(1, 8_000);
    expect(t.client.socket.io.engine.transport.name).toBe("polling");
    // Without stickiness the least-connections balancing sends these polls to
    // the other instances, which answer "Session ID unknown".
    for (let i = 0; i < 10; i++) expect(await t.client.echo(i)).toBe(i);
    expect(t.welcomes).toHaveLength(1);
    expect(t.welcomes[0]?.instance).toBe(welcome.instance);
    t.client.close();
  });

  it("HAProxy reloaded (-sf) and then restarted under connected clients: nobody logged out, no event lost or repeated", async () => {
    const publisher: WorkerPublisher = await createPublisher(
      loadConfig({ REDIS_URL: cluster.redis.url, LOG_LEVEL: "silent" }),
    );
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 12; i++) clients.push(client(i % 4 === 3 ? { transports: ["polling"] } : {}));
      const steps = clients.map(() => [] as number[]);
      clients.forEach((t, i) => {
        t.client.on("job:progress", (p: JobProgressPayload) => p.jobId === "lb" && steps[i]?.push(p.step));
      });
      for (const t of clients) await t.client.login(cluster.apiKey);
      for (const t of clients) t.client.connect();
      await Promise.all(clients.map((t) => t.welcomed(1)));

      // A worker publishes to the user until told to stop, across both events.
      let published = 0;
      let stopping = false;
      const job = (async () => {
        while (!stopping) {
          published += 1;
          await publisher.publish({ user: "admin" }, "job:progress", { jobId: "lb", step: published, steps: 0 });
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      const websockets = clients.filter((_, i) => i % 4 !== 3);
      /** Every WebSocket client welcomed again since `marks` (a new connection), and every client connected. */
      const mark = () => clients.map((t) => t.welcomes.length);
      const movedSince = (marks: number[]) => () =>
        websockets.every((t) => t.welcomes.length > (marks[clients.indexOf(t)] ?? 0)) &&
        clients.every((t) => t.client.state === "connected");

      // A reload: the new process takes the listeners at once; the old one
      // cuts the WebSockets it still holds after HARD_STOP_AFTER (long-polling
      // clients simply send their next request to the new one).
      const old = cluster.lb.pid ?? 0;
      const beforeReload = mark();
      await cluster.lb.reload();
      expect(cluster.lb.pid).not.toBe(old);
      await waitFor("the old HAProxy process to finish", () => !alive(old), { timeoutMs: 20_000 });
      await waitFor("every WebSocket client moved to the new process", movedSince(beforeReload), { timeoutMs: 20_000 });

      // A restart: every connection is cut at once.
      const beforeRestart = mark();
      await cluster.lb.restart();
      await waitFor("every client back after the restart", movedSince(beforeRestart), { timeoutMs: 20_000 });
      const atRestart = published;
      await waitFor("a few events after the restart", () => published > atRestart + 5);
      stopping = true;
      await job;

      const expected = Array.from({ length: published }, (_, i) => i + 1);
      await waitFor("every client to have every event", () => steps.every((s) => s.length >= published), {
        timeoutMs: 15_000,
      });
      expect(steps.filter((s) => JSON.stringify(s) !== JSON.stringify(expected))).toEqual([]);
      for (const t of clients) expect(t.states).not.toContain("unauthenticated");
    } finally {
      for (const t of clients) t.client.close();
      await publisher.close();
    }
  }, 60_000);

  it("a rolling restart through HAProxy: the client follows without logging in again", async () => {
    const t = client();
    await t.client.login(cluster.apiKey);
    t.client.connect();
    await t.welcomed(1);
    for (const each of cluster.instances) {
      await each.stop();
      await each.start();
      await cluster.lb.waitForServer(each.name, "UP");
    }
    await t.waitForState("connected");
    // Its instance was restarted at least once, so it reconnected at least once.
    expect(t.welcomes.length).toBeGreaterThanOrEqual(2);
    expect(t.states).not.toContain("unauthenticated");
    expect(await t.client.echo("still here")).toBe("still here");
    t.client.close();
  }, 60_000);

  it("with every instance stopped, HAProxy answers in Tether's error shape, retryable", async () => {
    const [first] = cluster.instances;
    // A separate short cluster would cost another start: stop and restart here.
    await Promise.all(cluster.instances.map((each) => each.stop()));
    await Promise.all(cluster.instances.map((each) => cluster.lb.waitForServer(each.name, "DOWN")));
    const res = await https()(`${cluster.url}/api/auth/session`);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await res.json()).toEqual({ error: { code: "UNAVAILABLE", message: expect.any(String) } });
    await first?.start();
    await cluster.lb.waitForServer("tether1", "UP");
    expect((await https()(`${cluster.url}/readyz`)).status).toBe(200);
  });

  it("a full stop ends every process it started (instances, HAProxy, Redis)", async () => {
    const pids = cluster.pids();
    expect(pids.length).toBeGreaterThanOrEqual(3 + 1 + 1 + 1);
    await cluster.stop();
    expect(pids.filter(alive)).toEqual([]);
  });
});
