// Secrets in production: an instance started with NODE_ENV=production (as the
// Docker image runs it) refuses to start without a session secret and API key,
// rather than generate its own where a fleet could split; compose's one-shot
// `init` (deploy/init-secrets.sh) writes them once to a shared volume, and the
// instances read them through TETHER_*_FILE.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { FAST_ENV } from "@tether/testkit/instance";
import { freePort } from "@tether/testkit/ports";
import { startRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const MAIN = join(ROOT, "server/src/main.ts");
const dir = mkdtempSync(join(tmpdir(), "tether-secrets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** deploy/init-secrets.sh as compose's `init` runs it, into `secretsDir`. */
function init(secretsDir: string, env: Record<string, string> = {}) {
  const result = spawnSync("sh", [join(ROOT, "deploy/init-secrets.sh")], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", SECRETS_DIR: secretsDir, ...env },
  });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout;
}

/** server/src/main.ts as its own process, in production mode, with only `env` (and PATH). */
function instance(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", MAIN], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", ...FAST_ENV, NODE_ENV: "production", HOST: "127.0.0.1", ...env },
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
  return { child, exited, output: () => output };
}

describe("deploy/init-secrets.sh (compose's init service)", () => {
  it("generates each secret once, keeps it on the next start, and takes .env's value when one is set", () => {
    const secretsDir = join(dir, "volume");
    expect(init(secretsDir)).toBe("init: session_secret generated\ninit: api_key generated\n");
    const first = readFileSync(join(secretsDir, "session_secret"), "utf8");
    expect(first).toMatch(/^[A-Za-z0-9]{48}\n$/);
    expect(statSync(join(secretsDir, "api_key")).mode & 0o777).toBe(0o400);

    expect(init(secretsDir)).toBe("init: session_secret kept\ninit: api_key kept\n");
    expect(readFileSync(join(secretsDir, "session_secret"), "utf8")).toBe(first);

    // Rotation: the new secret first, the old one still verifying.
    const rotated = `${"n".repeat(40)},${first.trim()}`;
    expect(init(secretsDir, { TETHER_SESSION_SECRET: rotated })).toContain(
      "init: session_secret set from the environment",
    );
    expect(readFileSync(join(secretsDir, "session_secret"), "utf8")).toBe(`${rotated}\n`);
  });

  it("makes HAProxy's self-signed certificate once", () => {
    const pem = join(dir, "tls", "tls.pem");
    expect(init(join(dir, "volume-tls"), { TLS_PEM: pem })).toContain("tls: generated a self-signed certificate");
    const check = spawnSync("openssl", ["x509", "-in", pem, "-noout", "-checkend", "86400", "-ext", "subjectAltName"], {
      encoding: "utf8",
    });
    expect(check.status, check.stderr).toBe(0);
    expect(check.stdout).toContain("DNS:localhost, IP Address:127.0.0.1");
    expect(readFileSync(pem, "utf8")).toContain("PRIVATE KEY");
    expect(init(join(dir, "volume-tls"), { TLS_PEM: pem })).toContain(`init: keeping the certificate in ${pem}`);
  });
});

describe("NODE_ENV=production", () => {
  it("refuses to start without a session secret and API key, naming both and how to give them", async () => {
    const run = instance({ PORT: String(await freePort()) });
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(
      /TETHER_SESSION_SECRET: required with NODE_ENV=production .*TETHER_SESSION_SECRET_FILE/,
    );
    expect(run.output()).toMatch(/TETHER_API_KEY: required with NODE_ENV=production .*TETHER_API_KEY_FILE/);
  });

  it("starts with the secrets init wrote, read from their files, and generates nothing", async () => {
    const secretsDir = join(dir, "production");
    init(secretsDir);
    const redis = await startRedis();
    const port = await freePort();
    const run = instance({
      PORT: String(port),
      REDIS_URL: redis.url,
      TETHER_API_KEY_FILE: join(secretsDir, "api_key"),
      TETHER_SESSION_SECRET_FILE: join(secretsDir, "session_secret"),
    });
    try {
      await waitFor(
        "the production instance to be ready",
        async () => {
          if (run.child.exitCode !== null) throw new Error(`exited ${run.child.exitCode}:\n${run.output()}`);
          return (await fetch(`http://127.0.0.1:${port}/readyz`)).ok;
        },
        { timeoutMs: 30_000 },
      );
      const apiKey = readFileSync(join(secretsDir, "api_key"), "utf8").trim();
      const login = await fetch(`http://127.0.0.1:${port}/api/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ apiKey }),
      });
      expect(login.status).toBe(200);
      expect(run.output()).not.toContain(apiKey);
      // Nothing was generated into Redis (where generated secrets are shared).
      expect(await redis.client().exists("tether:apikey", "tether:session-secret")).toBe(0);
    } finally {
      run.child.kill("SIGTERM");
      await run.exited;
      await redis.close();
    }
  });
});
