import { type Logger, pino } from "pino";

/**
 * Structured JSON logs. Secrets never reach a log line: cookies and auth
 * headers are redacted, and ids of sessions and tokens are logged as tags.
 */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base,
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
