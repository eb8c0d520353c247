/**
 * TrainingTrigger: the function that turns a dataset upload into a training job.
 * @module
 */
import { Duration, Stack, Validations } from 'aws-cdk-lib'
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations'
import type { RetentionDays } from 'aws-cdk-lib/aws-logs'
import { EventType } from 'aws-cdk-lib/aws-s3'
import { LambdaDestination } from 'aws-cdk-lib/aws-s3-notifications'
import type { IQueue } from 'aws-cdk-lib/aws-sqs'
import { Construct } from 'constructs'
import { DATASET_PREFIX } from '../core/runs.js'
import type { DatasetBucket } from './dataset-bucket.js'
import { NodeFunction } from './node-function.js'
import { repoPath } from './paths.js'
import type { TrainerBatch } from './trainer-batch.js'

export interface TrainingTriggerProps {
  readonly bucket: DatasetBucket
  readonly trainer: TrainerBatch
  /** Where an upload event goes when the function failed on it after Lambda's asynchronous retries. */
  readonly deadLetterQueue: IQueue
  /** @default - NodeFunction's default */
  readonly logRetention?: RetentionDays
}

/**
 * `functions/trigger/lambda.ts`, invoked for every object created under `datasets/`. The archive suffix is
 * checked by the function, in any letter case (`.ZIP`, `.TAR.GZ`): S3 notification filters are
 * case-sensitive, and a notification per spelling cannot cover them all.
 *
 * It gets `STORE_BUCKET`, `JOB_QUEUE_ARN`, `JOB_DEFINITION_ARN`, and may: read and write `runs/*` (the
 * run's `status.json`, claimed with `If-None-Match` so a repeated event is a no-op) and submit this job
 * definition to this queue. Nothing else: the event carries what it needs to know of the dataset, and the
 * claim needs no `s3:ListBucket`. An event that still fails after Lambda's two retries goes to the
 * dead-letter queue.
 */
export class TrainingTrigger extends Construct {
  readonly fn: NodeFunction

  constructor(scope: Construct, id: string, props: TrainingTriggerProps) {
    super(scope, id)
    const { bucket, trainer } = props
    this.fn = new NodeFunction(this, 'Function', {
      entry: repoPath('functions/trigger/lambda.ts'),
      serviceName: 'agegender-trigger',
      description: 'Submits a training job for each dataset upload',
      memorySize: 256,
      timeout: Duration.seconds(30),
      ...(props.logRetention === undefined ? {} : { logRetention: props.logRetention }),
      onFailure: new SqsDestination(props.deadLetterQueue),
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      environment: {
        STORE_BUCKET: bucket.bucketName,
        JOB_QUEUE_ARN: trainer.jobQueue.jobQueueArn,
        JOB_DEFINITION_ARN: trainer.jobDefinition.jobDefinitionArn,
      },
    })
    trainer.grantSubmitJob(this.fn)
    bucket.grantRead(this.fn, 'runs/')
    bucket.grantPut(this.fn, 'runs/')

    bucket.bucket.addEventNotification(EventType.OBJECT_CREATED, new LambdaDestination(this.fn), {
      prefix: DATASET_PREFIX,
    })
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
