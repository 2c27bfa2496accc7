import { randomUUID } from "node:crypto";
import { ServerEvent } from "@tether/shared";
import type { Logger } from "pino";
import type { Publisher } from "./publisher.js";

/**
 * The demo workload: a job that publishes `job:progress` every `intervalMs`
 * for `steps` steps, then `job:done`, to every tab of the user.
 */
export class JobRunner {
  private readonly running = new Set<NodeJS.Timeout>();

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
    };
    const schedule = () => {
      const timer = setTimeout(() => {
        this.running.delete(timer);
        void tick();
      }, intervalMs);
      this.running.add(timer);
    };
    schedule();
    return jobId;
  }

  /** Stops every job of this instance (shutdown). */
  stopAll(): void {
    for (const timer of this.running) clearTimeout(timer);
    this.running.clear();
  }
}
