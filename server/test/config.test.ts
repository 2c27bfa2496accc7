import { DEFAULTS } from "@tether/shared";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config/config.js";

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

  it("never echoes a secret's value in the error", () => {
    try {
      loadConfig({ TETHER_API_KEY: "tiny" });
    } catch (err) {
      expect((err as ConfigError).message).not.toContain("tiny");
    }
  });
});
