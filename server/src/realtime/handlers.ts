import {
  ClientEventSchemas,
  ErrorCode,
  type EventAck,
  isPublishableEventName,
  MAX_EVENT_NAME_LENGTH,
  type StandardSchemaV1,
} from "@tether/shared";
import type { Logger } from "pino";
import { TetherError } from "../errors.js";

/** Who sent a client → server event. The session id is never exposed: it is a credential. */
export interface EventContext {
  /** The user the socket's login session belongs to. */
  userId: string;
  /** This connection's id (the Socket.IO socket id): differs per tab and per reconnect. */
  socketId: string;
  /** The instance the socket is connected to. */
  instance: string;
  /**
   * Aborted when the call's deadline passes (`TETHER_HANDLER_TIMEOUT`; the client is
   * then answered UNAVAILABLE) or the socket disconnects: pass it on to `fetch`, a
   * database driver, or check it between steps, so abandoned work stops.
   */
  signal: AbortSignal;
}

/** The handler of a client → server event: the validated payload in, the result out (or a TetherError). */
export type EventHandler<Payload, Result> = (payload: Payload, context: EventContext) => Result | Promise<Result>;

interface Registered {
  schema: StandardSchemaV1;
  handler: EventHandler<unknown, unknown>;
}

/** Issues quoted in an INVALID_INPUT acknowledgement, at most. */
const MAX_ISSUES = 3;
const MAX_ISSUE_LENGTH = 200;

/** The app's client → server events, each with its schema and handler (one per event name). */
export class EventHandlers {
  private readonly handlers = new Map<string, Registered>();

  constructor(private readonly logger: Logger) {}

  /** Throws INVALID_INPUT for a reserved or built-in name, or one already handled. */
  add(event: string, schema: StandardSchemaV1, handler: EventHandler<never, unknown>): void {
    if (!isPublishableEventName(event) || Object.hasOwn(ClientEventSchemas, event)) {
      throw new TetherError(
        ErrorCode.InvalidInput,
        `Event names are 1 to ${MAX_EVENT_NAME_LENGTH} characters and not reserved by Socket.IO or Tether.`,
      );
    }
    if (typeof schema?.["~standard"]?.validate !== "function") {
      throw new TetherError(ErrorCode.InvalidInput, `The schema of "${event}" is not a Standard Schema.`);
    }
    if (this.handlers.has(event)) throw new TetherError(ErrorCode.InvalidInput, `"${event}" already has a handler.`);
    this.handlers.set(event, { schema, handler: handler as EventHandler<unknown, unknown> });
  }

  has(event: string): boolean {
    return this.handlers.has(event);
  }

  /**
   * Validates the arguments with the event's schema: one payload, and the schema's
   * output (its transforms applied) is what the handler gets. Never throws.
   */
  async validate(
    event: string,
    args: unknown[],
  ): Promise<{ ok: true; value: unknown } | { ok: false; message: string }> {
    const registered = this.handlers.get(event);
    if (!registered) return { ok: false, message: `unknown event "${event.slice(0, 64)}"` };
    if (args.length !== 1) return { ok: false, message: `"${event}" takes one payload` };
    try {
      let result = registered.schema["~standard"].validate(args[0]);
      if (result instanceof Promise) result = await result;
      if (result.issues) return { ok: false, message: describeIssues(event, result.issues) };
      return { ok: true, value: result.value };
    } catch (err) {
      this.logger.error({ err, event }, "an event schema failed");
      return { ok: false, message: `invalid payload for "${event}"` };
    }
  }

  /**
   * Runs the handler on a validated payload and answers with an EventAck: a
   * TetherError keeps its code and message, anything else becomes INTERNAL
   * (logged here, its message never sent).
   */
  async call(event: string, payload: unknown, context: EventContext): Promise<EventAck> {
    const registered = this.handlers.get(event);
    if (!registered) return refused(ErrorCode.InvalidInput, `unknown event "${event.slice(0, 64)}"`);
    try {
      return { ok: true, result: await registered.handler(payload, context) };
    } catch (err) {
      if (err instanceof TetherError) return refused(err.code, err.message);
      this.logger.error({ err, event, socket: context.socketId }, "an event handler failed");
      return refused(ErrorCode.Internal, "Internal error.");
    }
  }
}

export function refused(code: ErrorCode, message: string): EventAck<never> {
  return { ok: false, error: { code, message } };
}

/** `invalid payload for "chat:send": text: Expected string`: the client's own input, no values echoed. */
function describeIssues(event: string, issues: ReadonlyArray<StandardSchemaV1.Issue>): string {
  const listed = issues.slice(0, MAX_ISSUES).map((issue) => {
    const path = (issue.path ?? []).map((part) => String(typeof part === "object" ? part.key : part)).join(".");
    const message = String(issue.message).slice(0, MAX_ISSUE_LENGTH);
    return path ? `${path}: ${message}` : message;
  });
  return `invalid payload for "${event}": ${listed.join("; ")}`;
}
