import { type Logger, pino } from "pino";

/** pino's levels, as `LOG_LEVEL` takes them. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What the logger is told by config (the environment is read there only). */
export interface LogSettings {
  logLevel: LogLevel;
  /** NODE_ENV=production: JSON lines even on a terminal. */
  production: boolean;
}

/** How deep `cause` chains are followed in a log line. */
const MAX_CAUSE_DEPTH = 3;

/** An error as a log line may show it: only fields that cannot carry a secret. */
export interface LoggedError {
  type: string;
  message: string;
  code?: string | number;
  /** The Redis command that failed (its name only: arguments hold keys, ids and tokens). */
  command?: string;
  stack?: string;
  cause?: LoggedError | string;
}

/** Redis arguments long enough to be a secret (session ids, tokens, keys), to cut out of messages. */
function commandArgs(err: object): string[] {
  const args = (err as { command?: { args?: unknown } }).command?.args;
  return Array.isArray(args) ? args.map(String).filter((arg) => arg.length >= 8) : [];
}

/** Removes every argument from a message (Redis echoes some, e.g. "unknown command …, with args beginning with: …"). */
function scrub(text: string, args: string[]): string {
  let out = text.replace(/with args beginning with:.*$/s, "with args beginning with: [redacted]");
  for (const arg of args) out = out.split(arg).join("[redacted]");
  return out;
}

/** An error this serializer already made (call sites serialize for loggers a host app passes in): its allowed fields only. */
function alreadySerialized(value: unknown): LoggedError | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { type, message, code, command, stack, cause } = value as Record<string, unknown>;
  if (typeof type !== "string" || typeof message !== "string") return undefined;
  const out: LoggedError = { type, message };
  if (typeof code === "string" || typeof code === "number") out.code = code;
  if (typeof command === "string") out.command = command;
  if (typeof stack === "string") out.stack = stack;
  const inner = typeof cause === "string" ? cause : alreadySerialized(cause);
  if (inner !== undefined) out.cause = inner;
  return out;
}

/**
 * The one error serializer of every log line: an allow-list (name, message, code,
 * command name, stack, cause), never the enumerable rest. ioredis errors carry
 * `command.args` (the session id, the WS token) and `previousErrors`; express-session
 * and Socket.IO pass those errors on as they are. Strings are logged as messages.
 */
export function serializeError(err: unknown, depth = 0): LoggedError | string {
  if (typeof err === "string") return err;
  if (!(err instanceof Error)) return alreadySerialized(err) ?? { type: typeof err, message: "(not an Error)" };
  const args = commandArgs(err);
  const out: LoggedError = { type: err.name, message: scrub(err.message, args) };
  const { code } = err as { code?: unknown };
  if (typeof code === "string" || typeof code === "number") out.code = code;
  const command = (err as { command?: { name?: unknown } }).command?.name;
  if (typeof command === "string") out.command = command;
  if (err.stack !== undefined) out.stack = scrub(err.stack, args);
  if (err.cause !== undefined && depth < MAX_CAUSE_DEPTH) out.cause = serializeError(err.cause, depth + 1);
  return out;
}

/**
 * Structured JSON logs. Secrets never reach a log line: errors go through the
 * allow-list serializer above, cookies and auth headers are redacted, and ids of
 * sessions and tokens are logged as tags.
 */
export function createLogger(settings: LogSettings, base: Record<string, unknown> = {}): Logger {
  // Human-readable lines for a developer's terminal; JSON everywhere else (pipes, containers, production).
  const pretty = process.stdout.isTTY === true && !settings.production;
  return pino({
    level: settings.logLevel,
    base,
    transport: pretty
      ? { target: "pino-pretty", options: { translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" } }
      : undefined,
    serializers: { err: (err: unknown) => serializeError(err), error: (err: unknown) => serializeError(err) },
    redact: {
      paths: [
        "req.headers.cookie",
        "req.headers.authorization",
        "apiKey",
        "token",
        "sid",
        "*.apiKey",
        "*.token",
        "*.sid",
      ],
      censor: "[redacted]",
    },
  });
}
