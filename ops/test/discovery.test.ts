// `docker compose up --scale tether=N` without Docker: the same
// deploy/haproxy.cfg finds the instances through DNS (server-template +
// resolvers), here a real dnsmasq answering one name with one A record per
// instance on 127.0.0.2, .3, … (all on one port, like containers). Scaling out
// and in is editing that record set; stickiness is a hash of the address, so a
// long-polling session keeps reaching its instance when HAProxy re-discovers
// the servers in another order.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FAST_ENV, LOG_DIR } from "@tether/testkit/instance";
import { freePort } from "@tether/testkit/ports";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClusterLb, startHaproxy } from "../../scripts/cluster/haproxy.mjs";
import { Fatal, ManagedProcess, waitUntil } from "../../scripts/cluster/process.mjs";
import { HAPROXY_CONFIG, ROOT, SOURCE_COMMAND } from "../../scripts/cluster/start.mjs";

const NAME = "tether.test";
const SLOTS = 6;

function onPath(program: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" }).status === 0;
}

// .ci/run installs dnsmasq-base; skipped only where it is absent.
describe.skipIf(!onPath("dnsmasq") || !onPath("haproxy"))("HAProxy discovers the instances through DNS", () => {
  const dir = mkdtempSync(join(tmpdir(), "tether-discovery-"));
  const logDir = join(LOG_DIR, `discovery-${process.pid}`);
  const hostsFile = join(dir, "hosts");
  const instances = new Map<string, ManagedProcess>();
  let redis: TestRedis;
  let dns: ManagedProcess;
  let lb: ClusterLb;
  let port: number;
  let dnsPort: number;

  /** The A records of NAME, in this order; dnsmasq re-reads them on SIGHUP. */
  const publish = (addresses: string[]) => {
    writeFileSync(hostsFile, addresses.map((address) => `${address} ${NAME}\n`).join(""));
    chmodSync(hostsFile, 0o644);
    dns.child.kill("SIGHUP");
  };

  /** One instance on `address`:port, as one more replica of a compose service. */
  const startInstance = async (address: string) => {
    const proc = new ManagedProcess(`tether-${address}`, SOURCE_COMMAND, {
      env: {
        ...process.env,
        ...FAST_ENV,
        // Long enough that an idle Engine.IO session outlives an HAProxy restart.
        TETHER_PING_INTERVAL: "20s",
        TETHER_PING_TIMEOUT: "20s",
        REDIS_URL: redis.url,
        HOST: address,
        PORT: String(port),
        TETHER_TRUST_PROXY: "1",
        TETHER_INSTANCE_ID: `tether-${address}`,
      },
      cwd: ROOT,
      logDir,
    });
    instances.set(address, proc);
    await waitUntil(`the instance on ${address}`, async () => {
      if (!proc.running) throw new Fatal(`exited (${proc.describeExit()}):\n${proc.tail()}`);
      return (await fetch(`http://${address}:${port}/readyz`)).ok;
    });
  };

  /** The servers HAProxy has filled from DNS and sees UP, by address. */
  const upAddresses = async () =>
    (await lb.servers())
      .filter((server) => server.status === "UP")
      .map((server) => server.addr)
      .sort();
  const waitForUp = (addresses: string[]) => {
    const want = addresses.map((address) => `${address}:${port}`).sort();
    return waitFor(`HAProxy to see exactly ${addresses.join(", ")} UP`, async () => {
      return JSON.stringify(await upAddresses()) === JSON.stringify(want);
    });
  };

  beforeAll(async () => {
    mkdirSync(logDir, { recursive: true });
    chmodSync(dir, 0o755);
    redis = await startRedis();
    [port, dnsPort] = [await freePort(), await freePort()];
    writeFileSync(hostsFile, "");
    chmodSync(hostsFile, 0o644);
    // biome-ignore format: one option per line
    dns = new ManagedProcess("dnsmasq", [
      "dnsmasq", "--no-daemon", "--log-queries",
      "--listen-address=127.0.0.1", `--port=${dnsPort}`, "--bind-interfaces",
      "--no-resolv", "--no-hosts", `--addn-hosts=${hostsFile}`,
      // Answers are never cached by HAProxy beyond its own `hold valid`.
      "--local-ttl=0", "--pid-file=",
    ], { env: process.env, cwd: ROOT, logDir });
    await Promise.all(["127.0.0.2", "127.0.0.3", "127.0.0.4"].map(startInstance));
    publish(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    lb = await startLb();
    await waitForUp(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
  }, 60_000);

  const startLb = async () =>
    startHaproxy({
      config: HAPROXY_CONFIG,
      port: await freePort(),
      discover: { address: `${NAME}:${port}`, nameserver: `127.0.0.1:${dnsPort}`, slots: SLOTS },
      adminSocket: join(dir, "haproxy.sock"),
      logDir,
      cwd: ROOT,
    });

  afterAll(async () => {
    await lb?.stop();
    await Promise.all([...instances.values()].map((proc) => proc.stop()));
    await dns?.stop();
    await redis?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("fills one server slot per A record, and leaves the others empty", async () => {
    const servers = await lb.servers();
    expect(servers.map((server) => server.name)).toEqual(Array.from({ length: SLOTS }, (_, i) => `tether${i + 1}`));
    expect(servers.filter((server) => server.status === "UP")).toHaveLength(3);
    const res = await fetch(`http://127.0.0.1:${lb.port}/readyz`);
    expect(res.status).toBe(200);
  });

  it("scales out and in with the record set: a new replica is used, a removed one is dropped", async () => {
    await startInstance("127.0.0.5");
    publish(["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]);
    await waitForUp(["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]);

    // Scale in: the replica drains on SIGTERM and leaves DNS, as `--scale tether=3` does.
    expect(await instances.get("127.0.0.5")?.stop()).toMatchObject({ code: 0 });
    publish(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    await waitForUp(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
  }, 30_000);

  it("stickiness survives re-discovery: the SERVERID cookie names an address, not a slot", async () => {
    // An Engine.IO session over long-polling lives on one instance only.
    const open = await fetch(`http://127.0.0.1:${lb.port}/socket.io/?EIO=4&transport=polling`);
    expect(open.status).toBe(200);
    const sid = /"sid":"([^"]+)"/.exec(await open.text())?.[1];
    const cookie = (open.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    expect(cookie).toMatch(/^SERVERID=[0-9a-f]{16}$/);
    const slotsBefore = (await lb.servers()).map((server) => `${server.name}=${server.addr}`);

    // HAProxy starts again and learns the replicas in another order: other slots, same cookie values.
    publish(["127.0.0.4", "127.0.0.3", "127.0.0.2"]);
    await lb.restart();
    await waitForUp(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    const slotsAfter = (await lb.servers()).map((server) => `${server.name}=${server.addr}`);
    expect(slotsAfter).not.toEqual(slotsBefore);

    // A noop packet for that session: "ok" only from the instance that holds it.
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`http://127.0.0.1:${lb.port}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
        method: "POST",
        headers: { cookie, "content-type": "text/plain;charset=UTF-8" },
        body: "6",
      });
      expect(await res.text()).toBe("ok");
    }
  }, 30_000);
});
