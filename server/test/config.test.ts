import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, requireGivenSecrets, SECRET_SETTINGS } from "../src/config/config.js";
import { DEFAULTS } from "../src/config/defaults.js";
import { readMachine, resolveCapacity } from "../src/env/capacity.js";

const secretsDir = mkdtempSync(join(tmpdir(), "tether-config-secrets-"));
afterAll(() => rmSync(secretsDir, { recursive: true, force: true }));

/** Writes a secret file, as Docker or Kubernetes mounts one, and returns its path. */
function secretFile(name: string, content: string): string {
  const path = join(secretsDir, name);
  writeFileSync(path, content);
  return path;
}

/** The problems of a refused configuration. */
function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  return expect.unreachable("the configuration was accepted");
}

describe("config", () => {
  it("uses the documented defaults", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: "0.0.0.0",
      redisUrl: undefined,
      sessionIdleTtlMs: DEFAULTS.sessionIdleTtlMs,
      sessionMaxAgeMs: DEFAULTS.sessionMaxAgeMs,
      wsTokenTtlMs: 60_000,
      pingIntervalMs: 25_000,
      pingTimeoutMs: 20_000,
      recoveryWindowMs: 600_000,
      allowedOrigins: [],
      rateLimits: true,
      logLevel: "info",
    });
    expect(config.limits.loginAccount).toEqual({ points: 10, durationMs: 60_000 });
  });

  it("parses durations with units", () => {
    const config = loadConfig({
      TETHER_WS_TOKEN_TTL: "500ms",
      TETHER_SESSION_IDLE_TTL: "30s",
      TETHER_SESSION_MAX_AGE: "7d",
      TETHER_PING_INTERVAL: "5m",
    });
    expect(config.wsTokenTtlMs).toBe(500);
    expect(config.sessionIdleTtlMs).toBe(30_000);
    expect(config.sessionMaxAgeMs).toBe(7 * 86_400_000);
    expect(config.pingIntervalMs).toBe(300_000);
  });

  it("checks each session's existence once per 10 minutes on a Cluster, never less often than once per round", () => {
    expect(loadConfig({}).sessionSweepIntervalMs).toBe(10 * 60_000);
    expect(loadConfig({ TETHER_SESSION_SWEEP_INTERVAL: "1m" }).sessionSweepIntervalMs).toBe(60_000);
    // A check interval longer than the default sweep: the sweep follows it.
    expect(loadConfig({ TETHER_SESSION_CHECK_INTERVAL: "20m" }).sessionSweepIntervalMs).toBe(20 * 60_000);
  });

  it("parses lists and trust proxy", () => {
    const config = loadConfig({
      TETHER_ALLOWED_ORIGINS: "https://a.example, http://127.0.0.2:8080",
      TETHER_TRUST_PROXY: "1",
    });
    expect(config.allowedOrigins).toEqual(["https://a.example", "http://127.0.0.2:8080"]);
    expect(config.trustProxy).toBe(1);
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    [
      "a duration without a number",
      { TETHER_WS_TOKEN_TTL: "soon" },
      /^TETHER_WS_TOKEN_TTL: expected a duration .* \(got "soon"\)$/,
    ],
    ["a negative duration", { TETHER_PING_INTERVAL: "-5s" }, /^TETHER_PING_INTERVAL: expected a duration/],
    ["a port out of range", { PORT: "70000" }, /^PORT: /],
    ["a non-redis URL", { REDIS_URL: "http://localhost:6379" }, /^REDIS_URL: expected a redis:\/\/ or rediss:\/\/ URL/],
    [
      "an origin with a path",
      { TETHER_ALLOWED_ORIGINS: "https://a.example/app" },
      /^TETHER_ALLOWED_ORIGINS: expected an origin/,
    ],
    [
      "a short session secret",
      { TETHER_SESSION_SECRET: "short" },
      /^TETHER_SESSION_SECRET: each secret needs at least 32 characters$/,
    ],
    ["an unknown log level", { LOG_LEVEL: "loud" }, /^LOG_LEVEL: /],
    [
      "a max age below the idle TTL",
      { TETHER_SESSION_IDLE_TTL: "2d", TETHER_SESSION_MAX_AGE: "1d" },
      /^TETHER_SESSION_MAX_AGE: must be at least/,
    ],
    [
      "a session sweep shorter than the check interval",
      { TETHER_SESSION_CHECK_INTERVAL: "1m", TETHER_SESSION_SWEEP_INTERVAL: "30s" },
      /^TETHER_SESSION_SWEEP_INTERVAL: must be at least TETHER_SESSION_CHECK_INTERVAL$/,
    ],
    [
      "a session sweep that is no duration",
      { TETHER_SESSION_SWEEP_INTERVAL: "often" },
      /^TETHER_SESSION_SWEEP_INTERVAL: expected a duration/,
    ],
    [
      "a login breaker one address could trip",
      { TETHER_RATE_LIMIT_LOGIN: "100/1m", TETHER_RATE_LIMIT_LOGIN_GLOBAL: "150/1m" },
      /^TETHER_RATE_LIMIT_LOGIN_GLOBAL: must allow more than one address can spend/,
    ],
  ];

  it.each(bad)("refuses %s with one line naming the variable", (_name, env, line) => {
    try {
      loadConfig(env);
      expect.unreachable("loadConfig accepted bad input");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toHaveLength(1);
      expect((err as ConfigError).problems[0]).toMatch(line);
    }
  });

  it("shows a bad value once, and each problem once", () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (err) {
        return (err as ConfigError).problems;
      }
      return expect.unreachable("loadConfig accepted bad input");
    };
    const [line] = problems({ TETHER_WS_TOKEN_TTL: "soon" });
    expect(line?.split("soon")).toHaveLength(2);
    expect(problems({ TETHER_RATE_LIMIT_LOGIN: "lots" })[0]?.split("lots")).toHaveLength(2);
    // Two bad origins in one variable: one line for the variable.
    expect(problems({ TETHER_ALLOWED_ORIGINS: "https://a.example/x, https://b.example/y" })).toHaveLength(1);
  });

  it("warns about a mistyped TETHER_* variable, naming the setting it was probably meant to be", () => {
    const config = loadConfig({ TETHER_PING_INTERVL: "1s", TETHER_API_KEY: "k".repeat(16), HOME: "/root" });
    expect(config.warnings).toEqual([
      "TETHER_PING_INTERVL is not a Tether setting and is ignored; did you mean TETHER_PING_INTERVAL?",
    ]);
    expect(config.pingIntervalMs).toBe(DEFAULTS.pingIntervalMs);
    const keyFile = secretFile("warn-key", "k".repeat(16));
    expect(loadConfig({ TETHER_API_KEY_FILE: keyFile, TETHER_TEST_LOG_DIR: "/tmp" }).warnings).toEqual([]);
  });

  it("names the mistyped variables alongside the problems when the configuration is refused", () => {
    try {
      loadConfig({ TETHER_WS_TOKEN_TTL: "soon", TETHER_SESION_SECRET: "x" });
      expect.unreachable("loadConfig accepted bad input");
    } catch (err) {
      expect((err as ConfigError).warnings).toEqual([
        "TETHER_SESION_SECRET is not a Tether setting and is ignored; did you mean TETHER_SESSION_SECRET?",
      ]);
    }
  });

  it("takes a base path, and moves the Socket.IO path under it unless that is set too", () => {
    expect(loadConfig({})).toMatchObject({ basePath: "", socketPath: "/socket.io/" });
    expect(loadConfig({ TETHER_BASE_PATH: "/tether/" })).toMatchObject({
      basePath: "/tether",
      socketPath: "/tether/socket.io/",
    });
    expect(loadConfig({ TETHER_BASE_PATH: "/tether", TETHER_SOCKET_PATH: "/ws" })).toMatchObject({
      basePath: "/tether",
      socketPath: "/ws/",
    });
    expect(() => loadConfig({ TETHER_BASE_PATH: "tether" })).toThrow(/TETHER_BASE_PATH: expected a path/);
  });

  it("sets the HTTP server's timeouts deliberately, and its connection caps from the machine", () => {
    const machine = resolveCapacity(readMachine());
    expect(loadConfig({}).http).toEqual({
      headersTimeoutMs: DEFAULTS.httpHeadersTimeoutMs,
      requestTimeoutMs: DEFAULTS.httpRequestTimeoutMs,
      keepAliveTimeoutMs: DEFAULTS.httpKeepAliveTimeoutMs,
      maxConnections: machine.connections,
      maxKeepAliveConnections: machine.keepAlive,
    });
    expect(loadConfig({}).maxSockets).toBe(machine.sockets);
    expect(() => loadConfig({ TETHER_HTTP_HEADERS_TIMEOUT: "1m", TETHER_HTTP_REQUEST_TIMEOUT: "30s" })).toThrow(
      /TETHER_HTTP_HEADERS_TIMEOUT: must not exceed/,
    );
  });

  it("never echoes a secret's value in the error", () => {
    try {
      loadConfig({ TETHER_API_KEY: "tiny" });
    } catch (err) {
      expect((err as ConfigError).message).not.toContain("tiny");
    }
  });

  describe("secrets from files (<name>_FILE)", () => {
    it("reads every secret from its file, dropping one trailing newline only", () => {
      const config = loadConfig({
        TETHER_API_KEY_FILE: secretFile("api-key", `${"a".repeat(20)}\n`),
        TETHER_SESSION_SECRET_FILE: secretFile("session", `${"s".repeat(32)},${"t".repeat(32)}\r\n`),
        TETHER_PUBLISH_KEY_FILE: secretFile("publish", "p".repeat(16)),
        TETHER_METRICS_KEY_FILE: secretFile("metrics", `${"m".repeat(16)}\n\n`),
      });
      expect(config.apiKey).toBe("a".repeat(20));
      expect(config.sessionSecrets).toEqual(["s".repeat(32), "t".repeat(32)]);
      expect(config.publishKey).toBe("p".repeat(16));
      // Only one newline is the file's ending; the rest is the value's (trimmed like any setting).
      expect(config.metricsKey).toBe("m".repeat(16));
      expect(config.warnings).toEqual([]);
    });

    it("validates a file's secret like the variable's, without showing it", () => {
      const [line] = problemsOf(() => loadConfig({ TETHER_API_KEY_FILE: secretFile("short", "tiny\n") }));
      expect(line).toBe("TETHER_API_KEY: expected at least 16 characters");
    });

    it.each(SECRET_SETTINGS)("refuses %s given both ways, a missing file and an empty one", (name) => {
      const value = name === "TETHER_SESSION_SECRET" ? "v".repeat(32) : "v".repeat(16);
      expect(
        problemsOf(() => loadConfig({ [name]: value, [`${name}_FILE`]: secretFile(`both-${name}`, value) })),
      ).toEqual([`${name}_FILE: set either ${name} or ${name}_FILE, not both`]);
      const missing = join(secretsDir, "nowhere");
      expect(problemsOf(() => loadConfig({ [`${name}_FILE`]: missing }))).toEqual([
        `${name}_FILE: cannot read ${missing} (ENOENT)`,
      ]);
      const empty = secretFile(`empty-${name}`, "\n");
      expect(problemsOf(() => loadConfig({ [`${name}_FILE`]: empty }))).toEqual([`${name}_FILE: ${empty} is empty`]);
    });
  });

  describe("NODE_ENV=production", () => {
    const secret = "s".repeat(32);
    const key = "k".repeat(16);

    it("requires the session secret and the API key of the built-in login", () => {
      const config = loadConfig({ NODE_ENV: "production" });
      expect(config.production).toBe(true);
      const problems = problemsOf(() => requireGivenSecrets(config, { builtInLogin: true }));
      expect(problems).toHaveLength(2);
      expect(problems[0]).toMatch(
        /^TETHER_SESSION_SECRET: required with NODE_ENV=production .*TETHER_SESSION_SECRET_FILE/,
      );
      expect(problems[1]).toMatch(/^TETHER_API_KEY: required with NODE_ENV=production .*TETHER_API_KEY_FILE/);
    });

    it("with a host app's own login, requires only the session secret", () => {
      const config = loadConfig({ NODE_ENV: "production" });
      expect(problemsOf(() => requireGivenSecrets(config, { builtInLogin: false }))).toEqual([
        expect.stringMatching(/^TETHER_SESSION_SECRET: required/),
      ]);
      const withSecret = loadConfig({ NODE_ENV: "production", TETHER_SESSION_SECRET: secret });
      expect(() => requireGivenSecrets(withSecret, { builtInLogin: false })).not.toThrow();
    });

    it("accepts secrets given as files, and generates freely outside production", () => {
      const config = loadConfig({
        NODE_ENV: "production",
        TETHER_SESSION_SECRET_FILE: secretFile("prod-session", secret),
        TETHER_API_KEY_FILE: secretFile("prod-key", key),
      });
      expect(() => requireGivenSecrets(config, { builtInLogin: true })).not.toThrow();
      for (const NODE_ENV of [undefined, "development", "test"]) {
        expect(() => requireGivenSecrets(loadConfig({ NODE_ENV }), { builtInLogin: true })).not.toThrow();
      }
    });

    it("names a mistyped secret variable alongside the refusal", () => {
      const config = loadConfig({ NODE_ENV: "production", TETHER_SESION_SECRET: secret, TETHER_API_KEY: key });
      try {
        requireGivenSecrets(config, { builtInLogin: true });
        expect.unreachable("accepted");
      } catch (err) {
        expect((err as ConfigError).warnings).toEqual([expect.stringContaining("did you mean TETHER_SESSION_SECRET?")]);
      }
    });
  });
});
