/** How much the client logs: each level includes the ones after it. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * Where the client logs: `console` fits, as do pino, winston and most loggers.
 * Each call gets a message and, when there is something to add, an object of fields.
 */
export interface ClientLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

/** The client's own log: the app's logger from `logLevel` up, or nothing (the default). */
export class ClientLog {
  constructor(
    private readonly logger: ClientLogger | undefined,
    private readonly level: LogLevel = "info",
  ) {}

  debug(message: string, fields?: Record<string, unknown>): void {
    this.write("debug", message, fields);
  }

  info(message: string, fields?: Record<string, unknown>): void {
    this.write("info", message, fields);
  }

  warn(message: string, fields?: Record<string, unknown>): void {
    this.write("warn", message, fields);
  }

  error(message: string, fields?: Record<string, unknown>): void {
    this.write("error", message, fields);
  }

  private write(level: LogLevel, message: string, fields: Record<string, unknown> | undefined): void {
    if (this.logger === undefined || RANK[level] < RANK[this.level]) return;
    const text = `[tether] ${message}`;
    try {
      if (fields === undefined) this.logger[level](text);
      else this.logger[level](text, fields);
    } catch {
      // A broken logger must not break the connection.
    }
  }
}

/** No logging: the default. */
export const SILENT = new ClientLog(undefined);
