// The deployment files, checked by the tools that will read them: HAProxy
// parses the exact deploy/haproxy.cfg that compose mounts, with the
// environment compose gives it; docker-compose 1.29 validates and resolves
// docker-compose.yml without a Docker engine. The Dockerfile, which only a
// Docker engine can build, is held to its contract line by line.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, SECRET_SETTINGS } from "../../server/src/config/config.js";
import { EnvSchema } from "../../server/src/config/schema.js";

const ROOT = resolve(import.meta.dirname, "../..");
const HAPROXY_CFG = join(ROOT, "deploy/haproxy.cfg");
const SETTINGS = Object.keys(EnvSchema.shape);

function onPath(program: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" }).status === 0;
}

/** Runs a program with only PATH and HOME from this environment, plus `env`. */
function run(argv: string[], env: Record<string, string> = {}) {
  const [program, ...args] = argv;
  const result = spawnSync(program ?? "", args, {
    cwd: ROOT,
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? tmpdir(), ...env },
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}`, stdout: result.stdout };
}

interface ComposeService {
  image?: string;
  deploy?: { replicas?: number };
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | null>;
  volumes?: string[];
  ports?: { published: number | string; target: number }[];
  depends_on?: Record<string, { condition: string }>;
  profiles?: string[];
}

const tlsDir = mkdtempSync(join(tmpdir(), "tether-deploy-tls-"));
afterAll(() => rmSync(tlsDir, { recursive: true, force: true }));

/** A self-signed PEM made by deploy/tls-cert.sh (once), for configs that name a certificate. */
function testCertificate(): string {
  const pem = join(tlsDir, "tls.pem");
  const made = run(["sh", "deploy/tls-cert.sh", pem]);
  expect(made.status, made.output).toBe(0);
  return pem;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** `docker-compose config`: validated against the Compose schema, interpolated, as JSON. */
function composeConfig(): ComposeFile {
  // An empty env file, so a developer's own .env does not change what is checked.
  const dir = mkdtempSync(join(tmpdir(), "tether-compose-"));
  writeFileSync(join(dir, "empty.env"), "");
  const result = run(["docker-compose", "--env-file", join(dir, "empty.env"), "-f", "docker-compose.yml", "config"]);
  rmSync(dir, { recursive: true, force: true });
  expect(result.status, result.output).toBe(0);
  const toJson = spawnSync("python3", ["-c", "import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"], {
    input: result.stdout,
    encoding: "utf8",
  });
  expect(toJson.status, toJson.stderr).toBe(0);
  return JSON.parse(toJson.stdout) as ComposeFile;
}

/** What compose fixes for the instances rather than passing through from .env. */
const FIXED = [
  "PORT",
  "HOST",
  "REDIS_URL",
  "TETHER_TRUST_PROXY",
  "TETHER_INSTANCE_ID",
  "TETHER_AGENT_PORT",
  "TETHER_AGENT_HOST",
  "TETHER_HEALTH_PORT",
];
/** Secrets the `init` service writes to the shared volume; the instances read their files. */
const FROM_INIT = ["TETHER_API_KEY", "TETHER_SESSION_SECRET"];
const SECRETS_DIR = "/run/secrets/tether";

// .ci/run installs docker-compose (Debian's 1.29, which validates without an engine); skipped only where it is absent.
describe.skipIf(!onPath("docker-compose"))("docker-compose.yml", () => {
  let compose: ComposeFile;
  beforeAll(() => {
    compose = composeConfig();
  });

  it("runs Redis, a one-shot init, one scalable Tether service (three replicas) and HAProxy", () => {
    // Services behind a profile (observability) start only when asked for: ops/test/observability.test.ts.
    const always = Object.entries(compose.services).filter(([, service]) => service.profiles === undefined);
    expect(always.map(([name]) => name).sort()).toEqual(["haproxy", "init", "redis", "tether"]);
    expect(compose.services.tether?.deploy?.replicas).toBe(3);
  });

  it("keeps Redis's data on a volume, append-only, and refuses to evict", () => {
    const redis = compose.services.redis;
    expect(redis?.image).toMatch(/^redis:7/);
    expect(redis?.command?.join(" ")).toContain("--appendonly yes");
    expect(redis?.command?.join(" ")).toContain("--maxmemory-policy noeviction");
    expect(redis?.volumes).toContain("redis-data:/data:rw");
    expect(Object.keys(compose.volumes ?? {})).toEqual(expect.arrayContaining(["redis-data", "secrets", "tls"]));
  });

  it("gives the instances the shared Redis, one trusted proxy hop, and the init's secrets read-only", () => {
    const service = compose.services.tether;
    expect(service?.environment).toMatchObject({
      REDIS_URL: "redis://redis:6379",
      TETHER_TRUST_PROXY: "1",
      // HAProxy, in another container, reads the agent port (127.0.0.1 by default).
      TETHER_AGENT_HOST: "0.0.0.0",
      // HAProxy's checks go to the health port, answered off the event loop (LB_HEALTH_PORT).
      TETHER_HEALTH_PORT: "3002",
      TETHER_API_KEY_FILE: `${SECRETS_DIR}/api_key`,
      TETHER_SESSION_SECRET_FILE: `${SECRETS_DIR}/session_secret`,
    });
    // No fixed id: every replica names itself (<hostname>-<random>).
    expect(service?.environment).not.toHaveProperty("TETHER_INSTANCE_ID");
    expect(service?.volumes).toContain(`secrets:${SECRETS_DIR}:ro`);
    expect(service?.depends_on?.redis?.condition).toBe("service_healthy");
    expect(service?.depends_on?.init?.condition).toBe("service_completed_successfully");
    expect(service?.image).toBe("tether:local");
  });

  it("passes every other setting of the contract through from .env, and none it does not know", () => {
    const passThrough = SETTINGS.filter((name) => !FIXED.includes(name) && !FROM_INIT.includes(name)).sort();
    const known = [...SETTINGS, ...SECRET_SETTINGS.map((name) => `${name}_FILE`)];
    const environment = compose.services.tether?.environment ?? {};
    const unset = Object.keys(environment).filter((key) => environment[key] === null);
    // Not set in .env: the variable stays unset in the container (the built-in default).
    expect(unset.sort()).toEqual(passThrough);
    expect(Object.keys(environment).filter((key) => !known.includes(key))).toEqual([]);
  });

  it("has init write the secrets (from .env when set there) and the certificate, with deploy/init-secrets.sh", () => {
    const init = compose.services.init;
    expect(init?.command).toEqual(["sh", "/deploy/init-secrets.sh"]);
    expect(init?.environment).toMatchObject({
      SECRETS_DIR,
      TLS_PEM: "/etc/haproxy/tls/tls.pem",
      TETHER_API_KEY: null,
      TETHER_SESSION_SECRET: null,
    });
    expect(init?.volumes).toEqual(expect.arrayContaining([`secrets:${SECRETS_DIR}:rw`, "tls:/etc/haproxy/tls:rw"]));
  });

  it("puts HAProxy in front with deploy/haproxy.cfg, TLS, and the replicas found through Docker's DNS", () => {
    const haproxy = compose.services.haproxy;
    expect(haproxy?.image).toMatch(/^haproxy:2\./);
    expect(haproxy?.volumes).toContain(`${HAPROXY_CFG}:/usr/local/etc/haproxy/haproxy.cfg:ro`);
    expect(haproxy?.volumes).toContain("tls:/etc/haproxy/tls:ro");
    expect(haproxy?.ports).toEqual([
      { published: 8080, target: 8080 },
      { published: 8443, target: 8443 },
    ]);
    expect(haproxy?.environment).toEqual({
      LB_BIND: ":8080",
      LB_TLS_BIND: ":8443",
      LB_TLS_CERT: "/etc/haproxy/tls/tls.pem",
      LB_HTTPS_PORT: "8443",
      LB_DISCOVER: "tether:3000",
      LB_AGENT_PORT: "3001",
      LB_HEALTH_PORT: "3002",
    });
    expect(haproxy?.depends_on?.init?.condition).toBe("service_completed_successfully");
  });

  it.skipIf(!onPath("haproxy"))("its HAProxy accepts the mounted config with the environment compose gives it", () => {
    const env = compose.services.haproxy?.environment as Record<string, string>;
    // The certificate init makes, here; Docker's DNS name stays unresolved (init-addr none).
    const result = run(["haproxy", "-c", "-f", HAPROXY_CFG], { ...env, LB_TLS_CERT: testCertificate() });
    expect(result.output).toContain("Configuration file is valid");
    expect(result.status).toBe(0);
  });
});

// .ci/run installs haproxy; skipped only where it is absent.
describe.skipIf(!onPath("haproxy"))("deploy/haproxy.cfg", () => {
  it("is valid as npm run cluster runs it: addresses, bind and admin socket from the environment", () => {
    const result = run(["haproxy", "-c", "-f", HAPROXY_CFG], {
      LB_BIND: "127.0.0.1:8080",
      LB_TLS_BIND: "127.0.0.1:8443",
      LB_TLS_CERT: testCertificate(),
      LB_ADMIN_SOCKET: join(tmpdir(), "tether-haproxy-check.sock"),
      ...Object.fromEntries([1, 2, 3, 4, 5, 6, 7, 8].map((n) => [`TETHER${n}_ADDR`, `127.0.0.1:${3000 + n}`])),
    });
    expect(result.output).toContain("Configuration file is valid");
    expect(result.status).toBe(0);
  });

  it("says what the operations guide says: upgrades, timeouts above the ping interval, stickiness, readiness checks", () => {
    const cfg = readFileSync(HAPROXY_CFG, "utf8");
    const directive = (pattern: RegExp) => expect(cfg).toMatch(new RegExp(`^\\s+${pattern.source}`, "m"));
    directive(/timeout tunnel 1h/);
    directive(/timeout client 60s/);
    directive(/timeout server 60s/);
    directive(/cookie SERVERID insert indirect nocache .*dynamic$/);
    directive(/dynamic-cookie-key /);
    directive(/server-template tether /);
    directive(/bind "\$\{LB_TLS_BIND-:8443\}" ssl crt /);
    directive(/http-request redirect location https:.* code 308 unless \{ ssl_fc \}/);
    directive(/http-response set-header Strict-Transport-Security /);
    directive(/option httpchk/);
    directive(/http-check send meth GET uri \/readyz/);
    directive(/default-server port "\$\{LB_HEALTH_PORT\}"/);
    directive(/option forwardfor/);
    directive(/option redispatch/);
  });
});

describe("Dockerfile", () => {
  /** Instructions, continuation lines joined, comments dropped. */
  const instructions = readFileSync(join(ROOT, "Dockerfile"), "utf8")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const [keyword = "", ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(" ") };
    });
  const stages = instructions.reduce<{ keyword: string; args: string }[][]>((all, instruction) => {
    if (instruction.keyword === "FROM") all.push([]);
    all.at(-1)?.push(instruction);
    return all;
  }, []);
  const runtime = stages.at(-1) ?? [];
  const args = (keyword: string) => runtime.filter((each) => each.keyword === keyword).map((each) => each.args);

  it("builds in one stage and runs from node:20-bookworm-slim in another", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(instructions.find((each) => each.keyword === "ARG")?.args).toBe("NODE_IMAGE=node:20-bookworm-slim");
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the Dockerfile's own ARG syntax
    expect(stages[0]?.[0]?.args).toBe("${NODE_IMAGE} AS build");
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the Dockerfile's own ARG syntax
    expect(runtime[0]?.args).toBe("${NODE_IMAGE} AS runtime");
    expect(stages[0]?.some((each) => each.keyword === "RUN" && /npm ci\b/.test(each.args))).toBe(true);
    expect(stages[0]?.some((each) => each.keyword === "RUN" && /turbo run build/.test(each.args))).toBe(true);
  });

  it("ships production dependencies and the built output only", () => {
    expect(args("RUN").some((each) => /npm ci --omit=dev/.test(each))).toBe(true);
    const copied = args("COPY")
      .filter((each) => each.startsWith("--from=build"))
      .map((each) => each.split(/\s+/)[1]);
    expect(copied.sort()).toEqual(
      ["/app/shared/dist", "/app/server/dist", "/app/client/dist", "/app/client/demo"].sort(),
    );
  });

  it("runs node itself as PID 1, as a non-root user, in production mode, with a health check", () => {
    expect(args("ENV").join(" ")).toMatch(/\bNODE_ENV=production\b/);
    const user = args("USER").at(-1);
    expect(user).toBeDefined();
    expect(["root", "0"]).not.toContain(user);
    expect(JSON.parse(args("CMD").at(-1) ?? "null")).toEqual(["node", "server/dist/main.js"]);
    const healthcheck = args("HEALTHCHECK").at(-1) ?? "";
    const probe = JSON.parse(healthcheck.slice(healthcheck.indexOf("CMD ") + 4)) as string[];
    expect(probe.slice(0, 2)).toEqual(["node", "-e"]);
    expect(probe[2]).toContain("/healthz");
  });

  it("health check script exits 0 against a live /healthz and 1 when nothing answers", async () => {
    const healthcheck = args("HEALTHCHECK").at(-1) ?? "";
    const [, , script = ""] = JSON.parse(healthcheck.slice(healthcheck.indexOf("CMD ") + 4)) as string[];
    const server = createServer((req, res) => {
      res.statusCode = req.url === "/healthz" ? 200 : 404;
      res.end("{}");
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    // Not spawnSync: the probe talks to a server in this very process.
    const probe = (env: Record<string, string>) =>
      new Promise<number | null>((done) => {
        spawn(process.execPath, ["-e", script], { env }).once("exit", (code) => done(code));
      });
    expect(await probe({ PORT: String(port) })).toBe(0);
    // The health port first, when there is one.
    expect(await probe({ PORT: "1", TETHER_HEALTH_PORT: String(port) })).toBe(0);
    await new Promise<void>((done) => server.close(() => done()));
    expect(await probe({ PORT: String(port) })).toBe(1);
  });

  it("leaves local installs, builds and secrets out of the build context", () => {
    const ignored = readFileSync(join(ROOT, ".dockerignore"), "utf8").split("\n");
    for (const pattern of ["**/node_modules", "**/dist", ".env", ".git"]) expect(ignored).toContain(pattern);
  });
});

describe(".env.example", () => {
  const documented = new Map(
    readFileSync(join(ROOT, ".env.example"), "utf8")
      .split("\n")
      .map((line) => /^#?\s?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line))
      .filter((match) => match !== null)
      .map((match) => [match[1] ?? "", match[2] ?? ""]),
  );
  /** Shown with an example or the compose value rather than the built-in default. */
  // Example values, not defaults: the capacity settings' defaults come from the machine.
  const NOT_DEFAULTS = [
    "REDIS_URL",
    "TETHER_ALLOWED_ORIGINS",
    "TETHER_TRUST_PROXY",
    "TETHER_HTTP_MAX_CONNECTIONS",
    "TETHER_MAX_SOCKETS",
    "TETHER_MEMORY_BUDGET",
    "TETHER_HTTP_MAX_KEEP_ALIVE_CONNECTIONS",
  ];

  it("documents every setting of the contract", () => {
    expect(SETTINGS.filter((name) => !documented.has(name))).toEqual([]);
  });

  it("shows the real default of each", () => {
    const { instanceId: _ignored, ...defaults } = loadConfig({});
    for (const name of SETTINGS) {
      const value = documented.get(name);
      if (!value || NOT_DEFAULTS.includes(name)) continue;
      const { instanceId: _also, ...withValue } = loadConfig({ [name]: value });
      expect(withValue, `${name}=${value}`).toEqual(defaults);
    }
  });
});
