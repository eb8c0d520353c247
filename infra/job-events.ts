/**
 * JobEvents: closes the run of every training job that Batch reports FAILED (out of memory, timeout, last
 * Spot reclaim, image pull error, cancelled while stuck RUNNABLE), so no run stays `queued` or `running`.
 * @module
 */
import { Duration } from 'aws-cdk-lib'
import { Rule, type IRule } from 'aws-cdk-lib/aws-events'
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets'
import type { RetentionDays } from 'aws-cdk-lib/aws-logs'
import type { IQueue } from 'aws-cdk-lib/aws-sqs'
import { Construct } from 'constructs'
import type { DatasetBucket } from './dataset-bucket.js'
import { NodeFunction } from './node-function.js'
import { repoPath } from './paths.js'
import type { TrainerBatch } from './trainer-batch.js'

export interface JobEventsProps {
  readonly bucket: DatasetBucket
  readonly trainer: TrainerBatch
  /** Where events go that the function could not handle after EventBridge's retries. */
  readonly deadLetterQueue: IQueue
  /** @default - NodeFunction's default */
  readonly logRetention?: RetentionDays
}

/**
 * An EventBridge rule on `Batch Job State Change` events of this queue with status `FAILED`, invoking
 * `functions/job-events/lambda.ts`, which writes the failure (Batch's reason, exit code, attempts) to the
 * run's status.json. The function may read and write `runs/*` and nothing else (no `s3:ListBucket`: it
 * creates a missing status with `If-None-Match` instead of reading it).
 */
export class JobEvents extends Construct {
  readonly fn: NodeFunction
  /** Matches every failed job of the queue: its `TriggeredRules` metric counts failed jobs. */
  readonly failedJobsRule: IRule

  constructor(scope: Construct, id: string, props: JobEventsProps) {
    super(scope, id)
    this.fn = new NodeFunction(this, 'Function', {
      entry: repoPath('functions/job-events/lambda.ts'),
      serviceName: 'agegender-job-events',
      description: 'Marks the run of a failed Batch training job failed, with the reason',
      memorySize: 256,
      timeout: Duration.seconds(30),
      ...(props.logRetention === undefined ? {} : { logRetention: props.logRetention }),
      environment: { STORE_BUCKET: props.bucket.bucketName },
    })
    props.bucket.grantRead(this.fn, 'runs/')
    props.bucket.grantPut(this.fn, 'runs/')

    this.failedJobsRule = new Rule(this, 'FailedJobs', {
      description: 'Failed training jobs (including jobs cancelled while RUNNABLE)',
      eventPattern: {
        source: ['aws.batch'],
        detailType: ['Batch Job State Change'],
        detail: { jobQueue: [props.trainer.jobQueue.jobQueueArn], status: ['FAILED'] },
      },
      targets: [
        new LambdaFunction(this.fn, {
          deadLetterQueue: props.deadLetterQueue,
          retryAttempts: 8,
          maxEventAge: Duration.hours(24),
        }),
      ],
    })
  }
}
