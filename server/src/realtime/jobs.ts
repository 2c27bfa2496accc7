import { randomUUID } from "node:crypto";
import { DEFAULTS, ErrorCode, ServerEvent } from "@tether/shared";
import type { Logger } from "pino";
import { TetherError } from "../errors.js";
import type { Publisher } from "./publisher.js";

/** Per-user caps of the demo workload, on one instance. */
export interface JobLimits {
  /** Jobs one user may run at once. Default `DEFAULTS.jobsPerUser`. */
  jobsPerUser: number;
  /** Steps still to run across one user's jobs, the new one included. Default `DEFAULTS.jobStepsPerUser`. */
  jobStepsPerUser: number;
}

export const DEFAULT_JOB_LIMITS: JobLimits = {
  jobsPerUser: DEFAULTS.jobsPerUser,
  jobStepsPerUser: DEFAULTS.jobStepsPerUser,
};

interface RunningJob {
  userId: string;
  remaining: number;
  /** Epoch ms when the job should be done, for Retry-After. */
  endsAt: number;
}

/**
 * The demo workload: a job that publishes `job:progress` every `intervalMs`
 * for `steps` steps, then `job:done`, to every tab of the user. Jobs publish
 * through the store, not to sockets, so they run on while clients move to
 * other instances during a drain.
 */
export class JobRunner {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly idleWaiters = new Set<() => void>();
  private readonly running = new Map<string, RunningJob>();

  constructor(
    private readonly publisher: Publisher,
    private readonly logger: Logger,
    private readonly limits: JobLimits = DEFAULT_JOB_LIMITS,
  ) {}

  /** Starts a job; RATE_LIMITED (with Retry-After) when the user is at a limit. */
  start(userId: string, steps: number, intervalMs: number): string {
    this.checkLimits(userId, steps);
    const jobId = randomUUID();
    const job: RunningJob = { userId, remaining: steps, endsAt: Date.now() + steps * intervalMs };
    this.running.set(jobId, job);
    const target = { user: userId };
    let step = 0;
    const tick = async (): Promise<void> => {
      step += 1;
      job.remaining = steps - step;
      try {
        await this.publisher.publish(target, ServerEvent.JobProgress, { jobId, step, steps });
        if (step === steps) await this.publisher.publish(target, ServerEvent.JobDone, { jobId });
      } catch (err) {
        this.logger.warn({ err, jobId, step }, "job event not published");
      }
      if (step < steps) schedule();
      else {
        this.running.delete(jobId);
        this.settle();
      }
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
    this.running.clear();
    this.settle();
  }

  private checkLimits(userId: string, steps: number): void {
    const mine = [...this.running.values()].filter((job) => job.userId === userId);
    const pending = mine.reduce((sum, job) => sum + job.remaining, 0);
    if (mine.length < this.limits.jobsPerUser && pending + steps <= this.limits.jobStepsPerUser) return;
    if (steps > this.limits.jobStepsPerUser)
      throw new TetherError(ErrorCode.InvalidInput, `A job has at most ${this.limits.jobStepsPerUser} steps here.`);
    const error = new TetherError(
      ErrorCode.RateLimited,
      `At most ${this.limits.jobsPerUser} jobs and ${this.limits.jobStepsPerUser} steps at once per user; wait for one to finish.`,
    );
    const firstEnd = Math.min(...mine.map((job) => job.endsAt));
    error.retryAfterSeconds = Math.max(1, Math.ceil((firstEnd - Date.now()) / 1000));
    throw error;
  }

  private settle(): void {
    if (this.timers.size > 0) return;
    for (const waiter of this.idleWaiters) waiter();
    this.idleWaiters.clear();
  }
}
