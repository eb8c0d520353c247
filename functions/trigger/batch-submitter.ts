/**
 * The AWS Batch `JobSubmitter`: one SubmitJob on the configured queue and definition, with the run's inputs
 * as container environment overrides.
 * @module
 */
import { type BatchClient, SubmitJobCommand } from '@aws-sdk/client-batch'
import type { RunRequest } from './plan.js'
import { runEnvironment, type JobSubmitter } from './submit.js'

export interface BatchSubmitterProps {
  readonly client: BatchClient
  /** Job queue ARN or name. */
  readonly jobQueue: string
  /** Job definition ARN, or `name[:revision]`. */
  readonly jobDefinition: string
}

/**
 * @example
 * const { jobQueue, jobDefinition } = parseTriggerConfig(process.env)
 * const submitter = batchSubmitter({ client: new BatchClient({}), jobQueue, jobDefinition })
 */
export function batchSubmitter(props: BatchSubmitterProps): JobSubmitter {
  return {
    async submit(run: RunRequest): Promise<string> {
      const out = await props.client.send(
        new SubmitJobCommand({
          jobName: run.jobName,
          jobQueue: props.jobQueue,
          jobDefinition: props.jobDefinition,
          containerOverrides: {
            environment: Object.entries(runEnvironment(run)).map(([name, value]) => ({ name, value })),
          },
          // No `tags`: tagging on submit needs batch:TagResource, which grantSubmitJob does not give.
        })
      )
      if (!out.jobId) throw new Error(`SubmitJob for ${run.jobName} returned no jobId`)
      return out.jobId
    },
  }
}
