import { randomUUID } from "node:crypto";
import { ErrorCode } from "@tether/shared";
import type { Logger } from "pino";
import { TetherError, toTetherError } from "../errors.js";
import type { Publisher } from "../realtime/publisher.js";
import { DemoEvent } from "./protocol.js";
import { DEMO_DEFAULTS, type JobLimits } from "./settings.js";

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
 * other instances during a drain. Each step is published under (job id, step),
 * retried through a failover (the publisher's deadline), and the next waits
 * for it: no step is skipped or sent twice. A step past the deadline ends the
 * job with `job:failed`.
 */
export class JobRunner {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly idleWaiters = new Set<() => void>();
  private readonly running = new Map<string, RunningJob>();
  /** Aborted by `stopAll`: stops the retries of the steps in flight. */
  private stopping = new AbortController();

  constructor(
    private readonly publisher: Publisher,
    private readonly logger: Logger,
    private readonly limits: JobLimits = DEMO_DEFAULTS,
  ) {}

  /** Starts a job; RATE_LIMITED (with Retry-After) when the user is at a limit. */
  start(userId: string, steps: number, intervalMs: number): string {
    this.checkLimits(userId, steps);
    const jobId = randomUUID();
    const job: RunningJob = { userId, remaining: steps, endsAt: Date.now() + steps * intervalMs };
    this.running.set(jobId, job);
    const target = { user: userId };
    const { signal } = this.stopping;
    let step = 0;
    const finish = () => {
      this.running.delete(jobId);
      this.settle();
    };
    const tick = async (): Promise<void> => {
      step += 1;
      job.remaining = steps - step;
      try {
        await this.publisher.publish(
          target,
          DemoEvent.JobProgress,
          { jobId, step, steps },
          { id: `job:${jobId}:${step}`, signal },
        );
        if (step === steps)
          await this.publisher.publish(target, DemoEvent.JobDone, { jobId }, { id: `job:${jobId}:done`, signal });
      } catch (err) {
        if (!signal.aborted) await this.fail(target, jobId, step, err, signal);
        finish();
        return;
      }
      if (step < steps && !signal.aborted) schedule();
      else finish();
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

  /** Tells the user the job stopped at `step`: published with a deadline of its own, logged if even that fails. */
  private async fail(target: { user: string }, jobId: string, step: number, err: unknown, signal: AbortSignal) {
    const reason = toTetherError(err).code;
    this.logger.error({ err, jobId, step }, "job step not published by the deadline: job failed");
    try {
      await this.publisher.publish(
        target,
        DemoEvent.JobFailed,
        { jobId, step, reason },
        { id: `job:${jobId}:failed`, signal },
      );
    } catch (failedErr) {
      this.logger.error({ err: failedErr, jobId, step }, "job:failed not published");
    }
  }

  /** Resolves when no job is running, or after `timeoutMs`, whichever comes first. */
  whenIdle(timeoutMs: number): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.idleWaiters.add(done);
    });
  }

  /** Stops every job of this instance (a step being retried stops retrying). */
  stopAll(): void {
    this.stopping.abort();
    this.stopping = new AbortController();
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
    error.retryAfterMs = Math.max(1, firstEnd - Date.now());
    throw error;
  }

  private settle(): void {
    // A job between steps has a timer; one publishing a step has none, but is still running.
    if (this.running.size > 0) return;
    for (const waiter of this.idleWaiters) waiter();
    this.idleWaiters.clear();
  }
}
