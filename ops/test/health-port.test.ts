// The health port as deploy/haproxy.cfg uses it (LB_HEALTH_PORT): HAProxy's checks of an
// instance whose event loop is stopped (as a reconnect storm's survivor's is, for a while)
// are answered from the instance's probe thread, and the instance stays UP.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { userNamedInBody } from "@tether/testkit/http";
import { MACHINE_LOAD_ENV } from "@tether/testkit/instance";
import { freePort } from "@tether/testkit/ports";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHaproxy } from "../../scripts/cluster/haproxy.mjs";
import { HAPROXY_CONFIG, ROOT } from "../../scripts/cluster/start.mjs";
import { loadConfig, type RunningServer, startServer } from "../../server/src/index.js";

function onPath(program: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" }).status === 0;
}

/** Stops this process's event loop for `ms` (a child that sleeps, waited for synchronously). */
function stopEventLoop(ms: number): void {
  spawnSync(process.execPath, ["-e", `setTimeout(() => {}, ${ms})`], { timeout: ms + 30_000 });
}

// .ci/run installs haproxy; skipped only where it is absent.
describe.skipIf(!onPath("haproxy"))("deploy/haproxy.cfg with LB_HEALTH_PORT", () => {
  const dir = mkdtempSync(join(tmpdir(), "tether-health-lb-"));
  let redis: TestRedis;
  const running: RunningServer[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(running.map((server) => server.close()));
    await redis?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * HAProxy as deploy/haproxy.cfg runs it, in front of one server of this process; the event
   * loop stopped for longer than two checks take: how many times HAProxy took the server DOWN.
   */
  async function downsWhileStopped(onHealthPort: boolean): Promise<{ downs: number; status: string }> {
    const healthPort = await freePort();
    const server = await startServer(
      loadConfig({
        ...MACHINE_LOAD_ENV,
        REDIS_URL: redis.url,
        TETHER_HEALTH_PORT: String(healthPort),
        TETHER_HEALTH_STALL: "60s",
        PORT: "0",
        HOST: "127.0.0.1",
        LOG_LEVEL: "silent",
      }),
      { login: userNamedInBody },
    );
    running.push(server);
    const lb = await startHaproxy({
      config: HAPROXY_CONFIG,
      port: await freePort(),
      backends: [new URL(server.url).host],
      env: onHealthPort ? { LB_HEALTH_PORT: String(healthPort) } : {},
      adminSocket: join(dir, `haproxy-${healthPort}.sock`),
      logDir: dir,
      cwd: ROOT,
    });
    try {
      await lb.waitForServer("tether1", "UP");
      // (HAProxy counts its first DOWN, before the first good checks, as one.)
      const [before] = await lb.servers();
      // Checks every second, DOWN after two failures (the second 500 ms after the first): 3.5 s at most; 5 s stopped.
      stopEventLoop(5_000);
      const [after] = await lb.servers();
      // Once the loop runs again, a server marked DOWN comes back after two good checks.
      await lb.waitForServer("tether1", "UP");
      return { downs: (after?.chkdown ?? 0) - (before?.chkdown ?? 0), status: after?.status ?? "" };
    } finally {
      await lb.stop();
    }
  }

  it("keeps the instance UP while its event loop is stopped; checked on the service port it goes DOWN", async () => {
    expect(await downsWhileStopped(true)).toEqual({ downs: 0, status: "UP" });
    // The control: the same stop, with the checks on the service port (no LB_HEALTH_PORT).
    const onServicePort = await downsWhileStopped(false);
    expect(onServicePort.downs).toBeGreaterThanOrEqual(1);
  });
});
