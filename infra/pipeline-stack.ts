/**
 * The whole pipeline in one stack: composes the constructs, maps settings onto them, and exports what a
 * user needs (bucket, predict URL, job queue).
 * @module
 */
import { CfnOutput, Duration, RemovalPolicy, Size, Stack, Validations, type StackProps } from 'aws-cdk-lib'
import { EcsMachineImageType } from 'aws-cdk-lib/aws-batch'
import { FunctionUrlAuthType, type IFunction } from 'aws-cdk-lib/aws-lambda'
import { RetentionDays } from 'aws-cdk-lib/aws-logs'
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs'
import type { Construct } from 'constructs'
import { Alarms } from './alarms.js'
import { DatasetBucket } from './dataset-bucket.js'
import { JobEvents } from './job-events.js'
import { retainLogsOfEveryFunction } from './log-retention.js'
import { PredictApi } from './predict-api.js'
import type { PipelineSettings } from './settings.js'
import { TrainerBatch } from './trainer-batch.js'
import { TrainingTrigger } from './training-trigger.js'

export interface PipelineStackProps extends StackProps {
  /** Validated settings, usually `settingsFromContext(app.node)`. */
  readonly settings: PipelineSettings
}

export class PipelineStack extends Stack {
  readonly data: DatasetBucket
  readonly predict: PredictApi
  /** Absent when `settings.trainer` is false. */
  readonly trainer?: TrainerBatch
  readonly trigger?: TrainingTrigger
  readonly jobEvents?: JobEvents
  /** Upload and job events that could not be handled after retries (absent without the trainer). */
  readonly deadLetters?: Queue
  readonly alarms: Alarms

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props)
    const s = props.settings

    this.data = new DatasetBucket(this, 'Data', {
      removalPolicy: s.bucketRemovalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    })

    this.predict = new PredictApi(this, 'Predict', {
      bucket: this.data,
      authType: s.predictAuth === 'AWS_IAM' ? FunctionUrlAuthType.AWS_IAM : FunctionUrlAuthType.NONE,
      memorySize: s.predictMemoryMb,
      modelRefreshSeconds: s.modelRefreshSeconds,
      ...(s.predictReservedConcurrency === undefined
        ? {}
        : { reservedConcurrentExecutions: s.predictReservedConcurrency }),
    })

    if (s.trainer) {
      this.trainer = new TrainerBatch(this, 'Trainer', {
        bucket: this.data,
        instanceTypes: s.instanceTypes,
        spot: s.spot,
        maxvCpus: s.maxvCpus,
        imageType: EcsMachineImageType[s.batchImageType],
        timeout: Duration.hours(s.jobTimeoutHours),
        runnableTimeout: Duration.hours(s.runnableTimeoutHours),
        rootVolumeSize: Size.gibibytes(s.rootVolumeGiB),
        ...(s.trainerBaseImage ? { cudaImage: s.trainerBaseImage } : {}),
        environment: {
          TRAIN_EPOCHS: String(s.trainEpochs),
          TRAIN_IMAGE_SIZE: String(s.trainImageSize),
          TRAIN_BATCH_SIZE: String(s.trainBatchSize),
          QUALITY_GATE_MAX_AGE_MAE: String(s.qualityGateMaxAgeMae),
          CHECKPOINT_MINUTES: String(s.checkpointMinutes),
          ...(s.trainPretrained ? { TRAIN_PRETRAINED: s.trainPretrained } : {}),
          ...(s.trainPretrainedSha256 ? { TRAIN_PRETRAINED_SHA256: s.trainPretrainedSha256 } : {}),
        },
      })
      this.deadLetters = new Queue(this, 'DeadLetters', {
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      })
      Validations.of(this.deadLetters).acknowledge({
        id: 'AwsSolutions-SQS3',
        reason: 'this queue is itself the dead-letter destination of the trigger and of the job-events rule',
      })
      this.trigger = new TrainingTrigger(this, 'Trigger', {
        bucket: this.data,
        trainer: this.trainer,
        deadLetterQueue: this.deadLetters,
      })
      this.jobEvents = new JobEvents(this, 'JobEvents', {
        bucket: this.data,
        trainer: this.trainer,
        deadLetterQueue: this.deadLetters,
      })
      new CfnOutput(this, 'JobQueueArn', { value: this.trainer.jobQueue.jobQueueArn })
      new CfnOutput(this, 'JobQueueName', { value: this.trainer.jobQueue.jobQueueName })
      new CfnOutput(this, 'JobDefinitionArn', { value: this.trainer.jobDefinition.jobDefinitionArn })
    }

    const functions: Record<string, IFunction> = { Predict: this.predict.fn }
    if (this.trigger) functions.Trigger = this.trigger.fn
    if (this.jobEvents) functions.JobEvents = this.jobEvents.fn
    this.alarms = new Alarms(this, 'Alarms', {
      functions,
      predict: this.predict.fn,
      predictInvocationsPerHour: s.predictInvocationsAlarmPerHour,
      ...(this.jobEvents ? { failedJobsRule: this.jobEvents.failedJobsRule } : {}),
      ...(this.deadLetters ? { deadLetterQueue: this.deadLetters } : {}),
      ...(s.alarmEmail ? { email: s.alarmEmail } : {}),
    })

    new CfnOutput(this, 'BucketName', { value: this.data.bucketName })
    new CfnOutput(this, 'PredictUrl', { value: this.predict.url.url })
    if (this.alarms.topic) new CfnOutput(this, 'AlarmTopicArn', { value: this.alarms.topic.topicArn })

    // last, once every function exists: the CDK's helper functions get a log retention too
    retainLogsOfEveryFunction(this, RetentionDays.ONE_MONTH)
  }
}
