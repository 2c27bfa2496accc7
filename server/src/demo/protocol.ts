import type { DemoServerEvents } from "@tether/shared";
import { z } from "zod";

/*
 * The demo's wire vocabulary: its route, the request it takes and the answer, and the
 * names of the events it publishes (their payloads are typed in @tether/shared's
 * `DemoServerEvents`, for clients). None of it is part of Tether's protocol.
 */

/** `POST /api/jobs`: starts a job for the signed-in user. */
export const JOBS_ROUTE = "/api/jobs";

export const JobBody = z.object({
  steps: z.number().int().min(1).max(10_000),
  intervalMs: z.number().int().min(0).max(60_000),
});

export interface JobResponse {
  jobId: string;
  /**
   * The id of the instance running the job (the one that took the request; the same
   * id its sockets' `welcome` carries). The job lives and dies with that process.
   */
  instance: string;
}

/** The events a job publishes to its user. */
export const DemoEvent = {
  JobProgress: "job:progress",
  JobDone: "job:done",
  /** A job gave up: a step could not be published within the publish deadline. */
  JobFailed: "job:failed",
} as const satisfies Record<string, keyof DemoServerEvents>;
