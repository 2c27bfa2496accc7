import { ErrorCode } from "@tether/shared";
import type { RequestHandler } from "express";
import { TetherError } from "../errors.js";

const expired = () => new TetherError(ErrorCode.Unavailable, "The store did not answer in time; retry with backoff.");

/**
 * One deadline for all the store work of one request (rate limits, session load,
 * session writes, token mint or consume): a stalled Redis answers UNAVAILABLE
 * within one command timeout, not one per step. The work itself is not
 * cancelled; its late result is ignored.
 */
export class Deadline {
  private readonly at: number;

  constructor(budgetMs: number) {
    this.at = Date.now() + budgetMs;
  }

  get remainingMs(): number {
    return this.at - Date.now();
  }

  /** `work`'s result, or UNAVAILABLE once the deadline has passed. */
  async run<T>(work: Promise<T>): Promise<T> {
    const left = this.remainingMs;
    if (left <= 0) {
      work.catch(() => {});
      throw expired();
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(expired()), left);
    });
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * An express middleware bounded by the request's deadline: past it, `next(UNAVAILABLE)`.
   * Its late `next()` is dropped; a late `next(err)` still reaches the error handler,
   * which logs it (express-session also raises one when a save fails after the response).
   */
  static bound(middleware: RequestHandler, deadlineOf: (req: object) => Deadline): RequestHandler {
    return (req, res, next) => {
      let settled = false;
      const timer = setTimeout(
        () => {
          settled = true;
          next(expired());
        },
        Math.max(0, deadlineOf(req).remainingMs),
      );
      middleware(req, res, (err?: unknown) => {
        if (settled) {
          if (err !== undefined) next(err);
          return;
        }
        settled = true;
        clearTimeout(timer);
        next(err);
      });
    };
  }
}

/** The deadline of each request, started by its first store step. */
export class RequestDeadlines {
  private readonly deadlines = new WeakMap<object, Deadline>();

  constructor(private readonly budgetMs: number) {}

  of(req: object): Deadline {
    let deadline = this.deadlines.get(req);
    if (deadline === undefined) {
      deadline = new Deadline(this.budgetMs);
      this.deadlines.set(req, deadline);
    }
    return deadline;
  }

  /** Gives the request a new deadline, from now (after work that is not the store's). */
  restart(req: object): Deadline {
    const deadline = new Deadline(this.budgetMs);
    this.deadlines.set(req, deadline);
    return deadline;
  }

  /** A fresh deadline for one operation that is not tied to a request. */
  fresh(): Deadline {
    return new Deadline(this.budgetMs);
  }
}
