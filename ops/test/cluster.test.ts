// The local cluster (`npm run cluster`): Redis, three instances and the real
// HAProxy with deploy/haproxy.cfg. The real client logs in and connects
// through the load balancer, over WebSocket and over long-polling (which only
// works with sticky routing), and a full stop leaves no process behind.
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Cluster, SOURCE_COMMAND, startCluster } from "../../scripts/cluster/start.mjs";
import { startClient } from "../../server/test/helpers/client.js";
import { FAST_ENV, LOG_DIR } from "../../server/test/helpers/instance.js";
import { freePort } from "../../server/test/helpers/ports.js";
import { waitFor } from "../../server/test/helpers/wait.js";

const ROOT = resolve(import.meta.dirname, "../..");
const INSTANCES = ["tether1", "tether2", "tether3"];
/** Short intervals, and a short drain so restarts take a moment. */
const CLUSTER_ENV = { ...FAST_ENV, TETHER_DRAIN_WINDOW: "300ms" };

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

  beforeAll(async () => {
    // Logs beside every other test instance's (LOG_DIR), where they stay for reading.
    const logDir = join(LOG_DIR, `cluster-${process.pid}`);
    cluster = await startCluster({ instances: 3, command: SOURCE_COMMAND, env: CLUSTER_ENV, logDir });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it("HAProxy sees every instance UP and answers /readyz through one of them", async () => {
    expect(await cluster.lb.servers()).toEqual(INSTANCES.map((name) => ({ name, status: "UP" })));
    const res = await fetch(`${cluster.url}/readyz`);
    expect(res.status).toBe(200);
    expect(res.headers.get("set-cookie")).toMatch(/^SERVERID=tether[123]; path=\/; HttpOnly; SameSite=Lax$/);
  });

  it("the real client logs in through HAProxy and is welcomed by an instance over WebSocket", async () => {
    const t = startClient(cluster.url);
    await t.client.login(cluster.apiKey);
    t.client.connect();
    const welcome = await t.welcomed(1);
    expect(INSTANCES).toContain(welcome.instance);
    expect(await t.client.echo({ hello: "cluster" })).toEqual({ hello: "cluster" });
    t.client.close();
  });

  it("long-polling works through HAProxy: the SERVERID cookie keeps one Engine.IO session on one instance", async () => {
    const t = startClient(cluster.url, { transports: ["polling"] });
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

  it("a rolling restart through HAProxy: the client follows without logging in again", async () => {
    const t = startClient(cluster.url);
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
    const res = await fetch(`${cluster.url}/api/auth/session`);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await res.json()).toEqual({ error: { code: "UNAVAILABLE", message: expect.any(String) } });
    await first?.start();
    await cluster.lb.waitForServer("tether1", "UP");
    expect((await fetch(`${cluster.url}/readyz`)).status).toBe(200);
  });

  it("a full stop ends every process it started (instances, HAProxy, Redis)", async () => {
    const pids = cluster.pids();
    expect(pids.length).toBeGreaterThanOrEqual(3 + 1 + 1 + 1);
    await cluster.stop();
    expect(pids.filter(alive)).toEqual([]);
  });
});

describe("npm run cluster", () => {
  it("prints the URL and the API key, serves through HAProxy, and exits 0 on SIGTERM leaving nothing behind", async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [join(ROOT, "scripts/cluster.mjs")], {
      cwd: ROOT,
      env: { ...process.env, ...CLUSTER_ENV, CLUSTER_PORT: String(port), CLUSTER_INSTANCES: "1", CLUSTER_SOURCE: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
    });
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
    try {
      await waitFor("the cluster's banner", () => output.includes("Ctrl-C stops everything"), { timeoutMs: 30_000 });
      expect(output).toContain(`Tether cluster on http://127.0.0.1:${port}`);
      const apiKey = /API key: (\S+)/.exec(output)?.[1];
      const login = await fetch(`http://127.0.0.1:${port}/api/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ apiKey }),
      });
      expect(login.status).toBe(200);
      const pids = [...output.matchAll(/pid (\d+)/g)].map((match) => Number(match[1]));
      expect(pids).toHaveLength(3);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(output).toContain("cluster: stopped");
      expect(pids.filter(alive)).toEqual([]);
      const logDir = /Logs: (\S+)/.exec(output)?.[1];
      if (logDir) rmSync(resolve(logDir, ".."), { recursive: true, force: true });
    } finally {
      // SIGTERM, never SIGKILL: the script must get to stop its children.
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    }
  }, 60_000);
});
