import { randomUUID } from "node:crypto";
import { ServerEvent } from "@tether/shared";
import type { Logger } from "pino";
import type { Publisher } from "./publisher.js";

/**
 * The demo workload: a job that publishes `job:progress` every `intervalMs`
 * for `steps` steps, then `job:done`, to every tab of the user. Jobs publish
 * through the store, not to sockets, so they run on while clients move to
 * other instances during a drain.
 */
export class JobRunner {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly idleWaiters = new Set<() => void>();

  constructor(
    private readonly publisher: Publisher,
    private readonly logger: Logger,
  ) {}

  start(userId: string, steps: number, intervalMs: number): string {
    const jobId = randomUUID();
    const target = { user: userId };
    let step = 0;
    const tick = async (): Promise<void> => {
      step += 1;
      try {
        await this.publisher.publish(target, ServerEvent.JobProgress, { jobId, step, steps });
        if (step === steps) await this.publisher.publish(target, ServerEvent.JobDone, { jobId });
      } catch (err) {
        this.logger.warn({ err, jobId, step }, "job event not published");
      }
      if (step < steps) schedule();
      else this.settle();
    };
    const schedule = () => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void tick();
      }, intervalMs);
      this.timers.add(timer);
    };
    schedule();
    return jobId;
  }

  /** Resolves when no job is running, or after `timeoutMs`, whichever comes first. */
  whenIdle(timeoutMs: number): Promise<void> {
    if (this.timers.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.idleWaiters.add(done);
    });
  }

  /** Stops every job of this instance. */
  stopAll(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.settle();
  }

  private settle(): void {
    if (this.timers.size > 0) return;
    for (const waiter of this.idleWaiters) waiter();
    this.idleWaiters.clear();
  }
}
