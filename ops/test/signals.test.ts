// `npm start` and `npm run cluster` under a supervisor: the signal goes to the
// npm process, which forwards it to its child. The script line starts with
// `exec`, so that child is node itself, not a shell that would not pass the
// signal on; it drains, stops and exits 0, and nothing is left behind.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { fetchFrom, nextClientAddress } from "@tether/testkit/address";
import { FAST_ENV } from "@tether/testkit/instance";
import { freePort } from "@tether/testkit/ports";
import { waitFor } from "@tether/testkit/wait";
import { describe, expect, it } from "vitest";
import { certificateOf, STATE_DIR } from "../../scripts/cluster/start.mjs";

const ROOT = resolve(import.meta.dirname, "../..");
const SIGNALS = ["SIGTERM", "SIGINT"] as const;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The direct children of a process (Linux /proc). */
function childrenOf(pid: number): number[] {
  const text = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
  return text === "" ? [] : text.split(/\s+/).map(Number);
}

function commandLine(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
}

/** `npm <args>` as a supervisor would start it, with its output collected. */
function npm(args: string[], env: Record<string, string | undefined>) {
  const child: ChildProcess = spawn("npm", args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    output += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once("exit", (code, signal) => done({ code, signal })),
  );
  return { child, exited, output: () => output };
}

/** npm's one child is node running `script`: no shell in between (the script line's `exec`). */
function expectNodeDirectlyUnder(npmPid: number, script: string): number {
  const children = childrenOf(npmPid);
  expect(children).toHaveLength(1);
  const [pid = 0] = children;
  expect(commandLine(pid)).toMatch(new RegExp(`^\\S*node\\S* .*${script}`));
  return pid;
}

/** Like `env` without the settings of whoever runs the tests (REDIS_URL, NODE_ENV…). */
function cleanEnv(extra: Record<string, string>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env, ...FAST_ENV, ...extra };
  for (const name of ["REDIS_URL", "NODE_ENV", "TETHER_TLS_CERT"]) delete env[name];
  return env;
}

describe("npm start", () => {
  it.each(SIGNALS)(
    "stops cleanly on %s sent to the npm process",
    async (signal) => {
      const port = await freePort();
      // Embedded mode: the signal path is what is tested, not Redis. Builds first if the build is missing.
      const run = npm(["start"], cleanEnv({ PORT: String(port), HOST: "127.0.0.1", TETHER_INSTANCE_ID: "npm-start" }));
      try {
        await waitFor(
          "npm start to serve /readyz",
          async () => {
            if (run.child.exitCode !== null) throw new Error(`npm start exited:\n${run.output()}`);
            return (await fetch(`http://127.0.0.1:${port}/readyz`)).ok;
          },
          { timeoutMs: 90_000, intervalMs: 100 },
        );
        const node = expectNodeDirectlyUnder(run.child.pid ?? 0, "scripts/start.mjs");
        run.child.kill(signal);
        expect(await run.exited).toEqual({ code: 0, signal: null });
        expect(alive(node)).toBe(false);
        expect(run.output()).toContain(`"signal":"${signal}"`);
        expect(run.output()).toContain("shutting down");
      } finally {
        if (run.child.exitCode === null) run.child.kill("SIGKILL");
      }
    },
    120_000,
  );
});

describe("npm run cluster", () => {
  it.each(SIGNALS)(
    "serves over HTTPS with --instances, and on %s to npm stops everything and exits 0",
    async (signal) => {
      const [port, tlsPort] = [await freePort(), await freePort()];
      const run = npm(
        ["run", "cluster", "--", "--instances", "2"],
        cleanEnv({
          TETHER_DRAIN_WINDOW: "300ms",
          CLUSTER_PORT: String(port),
          CLUSTER_TLS_PORT: String(tlsPort),
          CLUSTER_SOURCE: "1",
        }),
      );
      try {
        await waitFor("the cluster's banner", () => run.output().includes("Ctrl-C stops everything"), {
          timeoutMs: 60_000,
        });
        const output = run.output();
        expect(output).toContain(`Tether cluster on https://127.0.0.1:${tlsPort}  (HAProxy → 2 instances → Redis)`);
        expect(output).toContain(`http://127.0.0.1:${port} redirects there`);
        const apiKey = /API key: (\S+)/.exec(output)?.[1];
        const login = await fetchFrom(nextClientAddress(), { ca: certificateOf(join(STATE_DIR, "tls.pem")) })(
          `https://127.0.0.1:${tlsPort}/api/auth/login`,
          { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ apiKey }) },
        );
        expect(login.status).toBe(200);
        const pids = [...output.matchAll(/pid (\d+)/g)].map((match) => Number(match[1]));
        // Two instances, Redis, HAProxy; and the cluster script itself, directly under npm.
        expect(pids).toHaveLength(4);
        pids.push(expectNodeDirectlyUnder(run.child.pid ?? 0, "scripts/cluster.mjs"));

        run.child.kill(signal);
        expect(await run.exited).toEqual({ code: 0, signal: null });
        expect(run.output()).toContain(`cluster: ${signal}: stopping the instances`);
        expect(run.output()).toContain("cluster: stopped");
        expect(pids.filter(alive)).toEqual([]);
        const logDir = /Logs: (\S+)/.exec(run.output())?.[1];
        if (logDir) rmSync(resolve(logDir, ".."), { recursive: true, force: true });
      } finally {
        // Never SIGKILL first: the script must get to stop its children.
        if (run.child.exitCode === null) run.child.kill("SIGTERM");
        await run.exited;
      }
    },
    90_000,
  );
});
