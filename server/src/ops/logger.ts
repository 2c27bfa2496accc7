import { type Logger, pino } from "pino";

/** Human-readable lines for a developer's terminal; JSON everywhere else (pipes, containers, production). */
const pretty = process.stdout.isTTY === true && process.env.NODE_ENV !== "production";

/**
 * Structured JSON logs. Secrets never reach a log line: cookies and auth
 * headers are redacted, and ids of sessions and tokens are logged as tags.
 */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base,
    transport: pretty
      ? { target: "pino-pretty", options: { translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" } }
      : undefined,
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
