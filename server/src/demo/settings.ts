/** Per-user caps of the demo workload, on one instance. */
export interface JobLimits {
  /** Jobs one user may run at once. Default `DEMO_DEFAULTS.jobsPerUser` (3). */
  jobsPerUser: number;
  /** Steps still to run across one user's jobs, the new one included. Default `DEMO_DEFAULTS.jobStepsPerUser` (10,000). */
  jobStepsPerUser: number;
}

/** The demo's `POST /api/jobs`: jobs one user may run at once on one instance, and their steps together. */
export const DEMO_DEFAULTS = {
  jobsPerUser: 3,
  jobStepsPerUser: 10_000,
} as const satisfies JobLimits;
