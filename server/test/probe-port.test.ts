import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { ErrorCode } from "@tether/shared";
import { userNamedInBody } from "@tether/testkit/http";
import { MACHINE_LOAD_ENV } from "@tether/testkit/instance";
import { freePort } from "@tether/testkit/ports";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTether, loadConfig, type RunningServer, startServer } from "../src/index.js";

let redis: TestRedis;
const running: RunningServer[] = [];

beforeAll(async () => {
  redis = await startRedis({ persistence: true });
});
afterAll(async () => {
  await Promise.all(running.map((server) => server.close()));
  await redis?.close();
});

/** A server of this process (so that the test can stop its event loop) with a health port. */
async function serve(env: Record<string, string>): Promise<{ server: RunningServer; probes: string }> {
  const port = await freePort();
  const server = await startServer(
    loadConfig({
      ...MACHINE_LOAD_ENV,
      REDIS_URL: redis.url,
      TETHER_REDIS_COMMAND_TIMEOUT: "500ms",
      TETHER_HEALTH_PORT: String(port),
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "silent",
      ...env,
    }),
    { login: userNamedInBody },
  );
  running.push(server);
  return { server, probes: `http://127.0.0.1:${port}` };
}

/**
 * GETs `url` from another process while this one's event loop is stopped (spawnSync blocks
 * it until the child exits), after the child waits `delayMs`: the status, or "timeout".
 */
function getWhileStopped(url: string, options: { timeoutMs: number; delayMs?: number }): string {
  const script = `setTimeout(() => fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(${options.timeoutMs}) })
    .then(async (r) => console.log(r.status + " " + (await r.text())), () => console.log("timeout")), ${options.delayMs ?? 0})`;
  const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 30_000 });
  return child.stdout.trim();
}

async function status(url: string): Promise<number> {
  return (await fetch(url, { signal: AbortSignal.timeout(5_000) })).status;
}

describe("the health port (TETHER_HEALTH_PORT): checks answered off the event loop", () => {
  it("answers /healthz and /readyz while the event loop is stopped; the service port cannot", async () => {
    const { server, probes } = await serve({ TETHER_HEALTH_STALL: "60s" });
    await waitFor("ready on the health port", async () => (await status(`${probes}/readyz`)) === 200);
    expect(await (await fetch(`${probes}/healthz`)).json()).toEqual({ status: "ok" });
    // The main thread is stopped for the whole request: only a thread of its own can answer.
    expect(getWhileStopped(`${probes}/readyz`, { timeoutMs: 10_000 })).toBe('200 {"status":"ready"}');
    expect(getWhileStopped(`${probes}/healthz`, { timeoutMs: 10_000 })).toBe('200 {"status":"ok"}');
    // The same check on the service's own port waits for the loop, and times out.
    expect(getWhileStopped(`${server.url}/healthz`, { timeoutMs: 300 })).toBe("timeout");
  });

  it("fails both checks once the event loop has not run for TETHER_HEALTH_STALL, and recovers with it", async () => {
    const { probes } = await serve({ TETHER_HEALTH_STALL: "300ms" });
    await waitFor("ready on the health port", async () => (await status(`${probes}/readyz`)) === 200);
    for (const path of ["/healthz", "/readyz"]) {
      const answer = getWhileStopped(`${probes}${path}`, { timeoutMs: 10_000, delayMs: 1_000 });
      expect(answer.startsWith("503 ")).toBe(true);
      expect(JSON.parse(answer.slice(4))).toEqual({
        error: { code: ErrorCode.Unavailable, message: "The instance's event loop has stopped." },
      });
    }
    await waitFor("healthy again", async () => (await status(`${probes}/healthz`)) === 200);
    expect(await status(`${probes}/readyz`)).toBe(200);
  });

  it("turns /readyz 503 while Redis is gone (/healthz stays 200), and 200 again once it is back", async () => {
    const { probes } = await serve({ TETHER_HEALTH_STALL: "60s" });
    await waitFor("ready on the health port", async () => (await status(`${probes}/readyz`)) === 200);
    await redis.stop();
    try {
      await waitFor("not ready without Redis", async () => (await status(`${probes}/readyz`)) === 503);
      const body = await (await fetch(`${probes}/readyz`)).json();
      expect(body).toEqual({ error: { code: ErrorCode.Unavailable, message: "Redis is unreachable." } });
      expect(await status(`${probes}/healthz`)).toBe(200);
    } finally {
      await redis.start();
    }
    await waitFor("ready again", async () => (await status(`${probes}/readyz`)) === 200, { timeoutMs: 20_000 });
  });

  it("turns /readyz 503 as soon as the instance drains; /healthz stays 200", async () => {
    const { server, probes } = await serve({ TETHER_HEALTH_STALL: "60s" });
    await waitFor("ready on the health port", async () => (await status(`${probes}/readyz`)) === 200);
    const drained = server.tether.drain(0);
    await waitFor("not ready while draining", async () => (await status(`${probes}/readyz`)) === 503);
    expect(await (await fetch(`${probes}/readyz`)).json()).toEqual({
      error: { code: ErrorCode.Unavailable, message: "This instance is shutting down." },
    });
    expect(await status(`${probes}/healthz`)).toBe(200);
    await drained;
  });

  it("hostile requests get a short answer or a closed connection, and the next check is still answered", async () => {
    const { probes } = await serve({ TETHER_HEALTH_STALL: "60s" });
    await waitFor("ready on the health port", async () => (await status(`${probes}/readyz`)) === 200);
    const { port } = new URL(probes);
    // A request that is never finished, and one with a huge header.
    const hanging = connect(Number(port), "127.0.0.1", () => hanging.write("GET /readyz HTTP/1.1\r\nHost: x\r\n"));
    const huge = await fetch(`${probes}/readyz`, { headers: { "x-big": "y".repeat(20_000) } }).then(
      (r) => r.status,
      () => "closed",
    );
    expect([431, "closed"]).toContain(huge);
    // Wrong method, wrong path: a JSON 404, no stack trace.
    for (const [method, path] of [
      ["POST", "/readyz"],
      ["GET", "/metrics"],
      ["GET", "/../../etc/passwd"],
    ] as const) {
      const res = await fetch(`${probes}${path}`, { method });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(ErrorCode.NotFound);
    }
    expect(await status(`${probes}/readyz`)).toBe(200);
    hanging.destroy();
  });

  it("a host's own server: tether.startHealthPort() serves the same checks, through drain, and closes with close()", async () => {
    const tether = await createTether({
      config: loadConfig({ ...MACHINE_LOAD_ENV, REDIS_URL: redis.url, LOG_LEVEL: "silent" }),
      login: userNamedInBody,
    });
    const { port } = await tether.startHealthPort({ port: 0, host: "127.0.0.1" });
    const probes = `http://127.0.0.1:${port}`;
    await waitFor("ready on the health port", async () => (await status(`${probes}/readyz`)) === 200);
    await expect(tether.startHealthPort({ port: 0 })).rejects.toThrow(/already open/);
    await tether.drain(0);
    expect(await status(`${probes}/readyz`)).toBe(503);
    await tether.close();
    await expect(fetch(`${probes}/healthz`)).rejects.toThrow();
  });

  it("refuses a bad port at start with a readable message", async () => {
    expect(() => loadConfig({ TETHER_HEALTH_PORT: "70000" })).toThrow(/TETHER_HEALTH_PORT/);
    expect(() => loadConfig({ TETHER_HEALTH_STALL: "soon" })).toThrow(/TETHER_HEALTH_STALL/);
    const { probes } = await serve({});
    // The port is taken: the second server does not start, and says which port.
    await expect(serve({ TETHER_HEALTH_PORT: new URL(probes).port })).rejects.toThrow(/health port \d+/);
  });
});
