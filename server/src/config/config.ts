import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { closest } from "fastest-levenshtein";
import type { z } from "zod";
import { type AuthConfig, authConfig } from "../auth/settings.js";
import { readMachine, resolveCapacity } from "../env/capacity.js";
import { parseDuration } from "../env/duration.js";
import { capacitySettings, type HttpConfig, httpConfig } from "../http/settings.js";
import type { LogLevel } from "../observability/logger.js";
import { type OpsConfig, opsConfig } from "../ops/settings.js";
import { REALTIME_DEFAULTS, type RealtimeConfig, realtimeConfig } from "../realtime/settings.js";
import { type StoreConfig, storeConfig } from "../store/settings.js";
import { EnvSchema } from "./schema.js";

/** The default session check interval never exceeds this: revocation is noticed within it. */
const MAX_SESSION_CHECK_INTERVAL_MS = 30_000;

/**
 * Typed, validated configuration. Env is read here only; modules receive this.
 * Each module declares its part beside it (`<module>/settings.ts`).
 */
export interface TetherConfig extends HttpConfig, StoreConfig, AuthConfig, RealtimeConfig, OpsConfig {
  instanceId: string;
  logLevel: LogLevel;
  /** NODE_ENV=production: secrets must be given, never generated (see `requireGivenSecrets`); JSON logs. */
  production: boolean;
  /** Things worth telling the operator at start, such as a mistyped TETHER_* variable. */
  warnings: string[];
}

/** A configuration error: one readable line per bad variable. */
export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    /** Mistyped variable names and the like: often the cause of a problem. */
    readonly warnings: string[] = [],
  ) {
    super(`Invalid configuration:\n${problems.map((problem) => `  ${problem}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** One line per problem, each once, with the value shown once (never a secret's). */
function describe(issues: z.core.$ZodIssue[], env: Record<string, string | undefined>): string[] {
  const lines = issues.map((issue) => {
    const name = String(issue.path[0] ?? "environment");
    const given = env[name];
    const shown = given === undefined || /KEY|SECRET/.test(name) ? "" : ` (got "${given}")`;
    return `${name}: ${issue.message}${shown}`;
  });
  return [...new Set(lines)];
}

/**
 * The secrets. Each may also be given as a file, `<name>_FILE` holding its path
 * (Docker and Kubernetes secrets): the file's content, one trailing newline dropped.
 */
export const SECRET_SETTINGS = [
  "TETHER_API_KEY",
  "TETHER_SESSION_SECRET",
  "TETHER_PUBLISH_KEY",
  "TETHER_METRICS_KEY",
] as const;

/** The environment with every `<secret>_FILE` read into `<secret>`, and a line per file that could not be used. */
function readSecretFiles(env: Record<string, string | undefined>): {
  env: Record<string, string | undefined>;
  problems: string[];
} {
  const resolved = { ...env };
  const problems: string[] = [];
  for (const name of SECRET_SETTINGS) {
    const path = env[`${name}_FILE`]?.trim();
    if (!path) continue;
    if (env[name]?.trim()) {
      problems.push(`${name}_FILE: set either ${name} or ${name}_FILE, not both`);
      continue;
    }
    let content: string;
    try {
      content = readFileSync(path, "utf8");
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      problems.push(`${name}_FILE: cannot read ${path} (${reason})`);
      continue;
    }
    const value = content.replace(/\r?\n$/, "");
    if (value.trim() === "") problems.push(`${name}_FILE: ${path} is empty`);
    else resolved[name] = value;
  }
  return { env: resolved, problems };
}

/** Variables under the TETHER_ prefix that are not settings: the test suite's own. */
const NOT_SETTINGS = /^TETHER_TEST_/;

/**
 * A warning for each TETHER_* variable that is no setting (a typo would otherwise
 * be ignored in silence), naming the nearest setting. Secrets may also come as `<name>_FILE`.
 */
function unknownVariables(env: Record<string, string | undefined>): string[] {
  const settings = Object.keys(EnvSchema.shape);
  const known = new Set([...settings, ...SECRET_SETTINGS.map((name) => `${name}_FILE`)]);
  return Object.keys(env)
    .filter((name) => name.startsWith("TETHER_") && !known.has(name) && !NOT_SETTINGS.test(name))
    .sort()
    .map((name) => `${name} is not a Tether setting and is ignored; did you mean ${closest(name, [...known])}?`);
}

/**
 * Reads and validates the configuration from an environment (process.env by
 * default), or throws a ConfigError naming each bad variable.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): TetherConfig {
  const files = readSecretFiles(env);
  const parsed = EnvSchema.safeParse(files.env);
  if (!parsed.success || files.problems.length > 0) {
    const invalid = parsed.success ? [] : describe(parsed.error.issues, files.env);
    throw new ConfigError([...files.problems, ...invalid], unknownVariables(env));
  }
  const e = parsed.data;
  const problems: string[] = [];
  if (e.TETHER_SESSION_MAX_AGE < e.TETHER_SESSION_IDLE_TTL) {
    problems.push("TETHER_SESSION_MAX_AGE: must be at least TETHER_SESSION_IDLE_TTL");
  }
  if (e.REDIS_URL.length > 1 && e.TETHER_REDIS_CLUSTER !== "on") {
    problems.push("REDIS_URL: several URLs are only for a Redis Cluster (set TETHER_REDIS_CLUSTER=on)");
  }
  if (e.TETHER_DRAIN_WINDOW >= e.TETHER_SHUTDOWN_TIMEOUT) {
    problems.push("TETHER_DRAIN_WINDOW: must be shorter than TETHER_SHUTDOWN_TIMEOUT");
  }
  if (e.TETHER_PUBLISH_KEY !== undefined && e.TETHER_PUBLISH_KEY === e.TETHER_API_KEY) {
    problems.push("TETHER_PUBLISH_KEY: must differ from TETHER_API_KEY");
  }
  // One address adds at most its own budget to the breaker per window (two, across a window edge).
  const { TETHER_RATE_LIMIT_LOGIN: perAddress, TETHER_RATE_LIMIT_LOGIN_GLOBAL: breaker } = e;
  const oneAddressMax = perAddress.points * (Math.ceil(breaker.durationMs / perAddress.durationMs) + 1);
  if (breaker.points <= oneAddressMax) {
    problems.push(
      `TETHER_RATE_LIMIT_LOGIN_GLOBAL: must allow more than one address can spend (${oneAddressMax} per window with TETHER_RATE_LIMIT_LOGIN)`,
    );
  }
  const checkInterval =
    e.TETHER_SESSION_CHECK_INTERVAL === undefined
      ? Math.min(MAX_SESSION_CHECK_INTERVAL_MS, Math.floor(e.TETHER_SESSION_IDLE_TTL / 3))
      : parseDuration(e.TETHER_SESSION_CHECK_INTERVAL);
  if (e.TETHER_HTTP_HEADERS_TIMEOUT > e.TETHER_HTTP_REQUEST_TIMEOUT) {
    problems.push("TETHER_HTTP_HEADERS_TIMEOUT: must not exceed TETHER_HTTP_REQUEST_TIMEOUT");
  }
  if (checkInterval === undefined) {
    problems.push(`TETHER_SESSION_CHECK_INTERVAL: expected a duration such as 500ms, 30s, 5m or 7d`);
  } else if (checkInterval >= e.TETHER_SESSION_IDLE_TTL) {
    problems.push("TETHER_SESSION_CHECK_INTERVAL: must be shorter than TETHER_SESSION_IDLE_TTL");
  }
  const sweepInterval =
    e.TETHER_SESSION_SWEEP_INTERVAL === undefined
      ? Math.max(REALTIME_DEFAULTS.sessionSweepIntervalMs, checkInterval ?? 0)
      : parseDuration(e.TETHER_SESSION_SWEEP_INTERVAL);
  if (sweepInterval === undefined) {
    problems.push(`TETHER_SESSION_SWEEP_INTERVAL: expected a duration such as 500ms, 30s, 5m or 7d`);
  } else if (checkInterval !== undefined && sweepInterval < checkInterval) {
    problems.push("TETHER_SESSION_SWEEP_INTERVAL: must be at least TETHER_SESSION_CHECK_INTERVAL");
  }
  if (problems.length > 0 || checkInterval === undefined || sweepInterval === undefined)
    throw new ConfigError(problems, unknownVariables(env));
  // What this machine allows, unless the caps are given.
  const capacity = resolveCapacity(readMachine(), capacitySettings(e));
  return {
    ...httpConfig(e, capacity),
    ...storeConfig(e),
    ...authConfig(e),
    ...realtimeConfig(e, { checkIntervalMs: checkInterval, sweepIntervalMs: sweepInterval }, capacity.sockets),
    ...opsConfig(e),
    instanceId: e.TETHER_INSTANCE_ID ?? `${hostname()}-${randomBytes(3).toString("hex")}`,
    logLevel: e.LOG_LEVEL,
    production: env.NODE_ENV === "production",
    warnings: unknownVariables(env),
  };
}

/**
 * With NODE_ENV=production nothing is generated where a fleet could split: the
 * session secret must be given, and the API key too when the built-in login is
 * used (a host app's own `login` needs none). Throws a ConfigError otherwise.
 * Generated secrets stay a development convenience.
 */
export function requireGivenSecrets(config: TetherConfig, { builtInLogin }: { builtInLogin: boolean }): void {
  if (!config.production) return;
  const missing: string[] = [];
  if (config.sessionSecrets.length === 0) missing.push("TETHER_SESSION_SECRET");
  if (builtInLogin && config.apiKey === undefined) missing.push("TETHER_API_KEY");
  if (missing.length === 0) return;
  throw new ConfigError(
    missing.map(
      (name) =>
        `${name}: required with NODE_ENV=production (set it, or ${name}_FILE to a file holding it; e.g. openssl rand -base64 48)`,
    ),
    config.warnings,
  );
}

/**
 * Embedded mode is a choice: with NODE_ENV=production and no REDIS_URL an instance
 * refuses to start unless the host said `store: "memory"` (several instances missing
 * one variable would be several separate servers); `store: "memory"` with REDIS_URL
 * set is a contradiction. Throws a ConfigError saying what to set.
 */
export function requireStoreChoice(config: TetherConfig, { memoryStore }: { memoryStore: boolean }): void {
  if (memoryStore && config.redis !== undefined)
    throw new ConfigError(
      ['store: "memory" with REDIS_URL set: pick one (unset REDIS_URL, or leave out store: "memory")'],
      config.warnings,
    );
  if (config.production && config.redis === undefined && !memoryStore)
    throw new ConfigError(
      [
        'REDIS_URL: required with NODE_ENV=production (without it every instance is a separate server); to run one embedded instance on purpose, pass store: "memory" to createTether',
      ],
      config.warnings,
    );
}
