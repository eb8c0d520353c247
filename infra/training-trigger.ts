/**
 * TrainingTrigger: the function that turns a dataset upload into a training job.
 * @module
 */
import { Duration, Stack, Validations } from 'aws-cdk-lib'
import type { RetentionDays } from 'aws-cdk-lib/aws-logs'
import { EventType } from 'aws-cdk-lib/aws-s3'
import { LambdaDestination } from 'aws-cdk-lib/aws-s3-notifications'
import { Construct } from 'constructs'
import { DATASET_PREFIX, DATASET_SUFFIXES } from '../core/runs.js'
import type { DatasetBucket } from './dataset-bucket.js'
import { NodeFunction } from './node-function.js'
import { repoPath } from './paths.js'
import type { TrainerBatch } from './trainer-batch.js'

export interface TrainingTriggerProps {
  readonly bucket: DatasetBucket
  readonly trainer: TrainerBatch
  /** @default - NodeFunction's default */
  readonly logRetention?: RetentionDays
}

/**
 * `functions/trigger/lambda.ts`, invoked for every object created under `datasets/` whose key ends in an
 * archive suffix (one S3 notification per suffix: a filter holds one prefix and one suffix).
 *
 * It gets `STORE_BUCKET`, `JOB_QUEUE_ARN`, `JOB_DEFINITION_ARN`, and may: read `datasets/*` (object
 * metadata and version), read and write `runs/*` (the run's `status.json`, which also makes a repeated
 * event a no-op), list the bucket (so a missing status.json is a 404, not a 403), and submit this job
 * definition to this queue.
 */
export class TrainingTrigger extends Construct {
  readonly fn: NodeFunction

  constructor(scope: Construct, id: string, props: TrainingTriggerProps) {
    super(scope, id)
    const { bucket, trainer } = props
    this.fn = new NodeFunction(this, 'Function', {
      entry: repoPath('functions/trigger/lambda.ts'),
      description: 'Submits a training job for each dataset upload',
      memorySize: 256,
      timeout: Duration.seconds(30),
      ...(props.logRetention === undefined ? {} : { logRetention: props.logRetention }),
      environment: {
        STORE_BUCKET: bucket.bucketName,
        JOB_QUEUE_ARN: trainer.jobQueue.jobQueueArn,
        JOB_DEFINITION_ARN: trainer.jobDefinition.jobDefinitionArn,
      },
    })
    trainer.grantSubmitJob(this.fn)
    bucket.grantRead(this.fn, DATASET_PREFIX)
    bucket.grantRead(this.fn, 'runs/')
    bucket.grantPut(this.fn, 'runs/')
    bucket.grantList(this.fn)

    const destination = new LambdaDestination(this.fn)
    for (const suffix of DATASET_SUFFIXES) {
      const filter = { prefix: DATASET_PREFIX, suffix }
      bucket.bucket.addEventNotification(EventType.OBJECT_CREATED, destination, filter)
    }
    // the notifications are written by a CDK singleton custom resource at stack level
    for (const child of Stack.of(this).node.children) {
      if (!child.node.id.startsWith('BucketNotificationsHandler')) continue
      Validations.of(child).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason:
          "the CDK's own handler that writes the bucket's notification configuration; " +
          'the managed policy only lets it write CloudWatch logs',
      })
    }
  }
}
