/**
 * How the training job's process exits, which is what AWS Batch's retry strategy sees
 * (`infra/trainer-batch.ts` retries `INTERRUPTED` and gives up on `FAILED`).
 * @module
 */
export const JOB_EXIT = {
  /** The run succeeded (promoted or not). */
  SUCCEEDED: 0,
  /** The run failed for a reason retrying will not fix; status.json says why. */
  FAILED: 1,
  /** Stopped by SIGTERM/SIGINT after saving a checkpoint: a retry resumes it (EX_TEMPFAIL). */
  INTERRUPTED: 75,
} as const
