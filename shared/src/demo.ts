import type { ErrorCode } from "./codes.js";
import type { Offset } from "./offset.js";

/*
 * The demo workload's events (`POST /api/jobs` on the standalone server), typed here
 * because clients listen to them. They are not part of the protocol: Tether's core
 * never emits them, and the server's demo module publishes them as any app would
 * publish its own events.
 */

export interface JobProgressPayload {
  jobId: string;
  step: number;
  steps: number;
  offset: Offset;
}

export interface JobDonePayload {
  jobId: string;
  offset: Offset;
}

/**
 * A job ended without finishing: `step` could not be published within the publish
 * deadline (`reason`: the error's code, e.g. `UNAVAILABLE`). Every step before it
 * was delivered once; no step after it, and no `job:done`, will come.
 */
export interface JobFailedPayload {
  jobId: string;
  step: number;
  reason: ErrorCode;
  offset: Offset;
}

/** The demo job's server → client events: `job:progress` every step, then `job:done`, or `job:failed`. */
export interface DemoServerEvents {
  "job:progress": (payload: JobProgressPayload) => void;
  "job:done": (payload: JobDonePayload) => void;
  /** A job gave up: a step could not be published within the publish deadline. */
  "job:failed": (payload: JobFailedPayload) => void;
}

/**
 * The demo's events as an app event map (see `TetherEvents`): give it to
 * `createTetherClient<DemoEvents>()` to type `job:progress`, `job:done` and `job:failed`
 * (each payload gains its `offset` on the client, like every app event's).
 */
export interface DemoEvents {
  server: {
    "job:progress": Omit<JobProgressPayload, "offset">;
    "job:done": Omit<JobDonePayload, "offset">;
    "job:failed": Omit<JobFailedPayload, "offset">;
  };
}
