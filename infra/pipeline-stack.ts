/**
 * The whole pipeline in one stack: composes the constructs, maps settings onto them, and exports what a
 * user needs (bucket, predict URL, job queue).
 * @module
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib'
import { EcsMachineImageType } from 'aws-cdk-lib/aws-batch'
import { FunctionUrlAuthType } from 'aws-cdk-lib/aws-lambda'
import type { Construct } from 'constructs'
import { DatasetBucket } from './dataset-bucket.js'
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
        environment: {
          TRAIN_EPOCHS: String(s.trainEpochs),
          TRAIN_IMAGE_SIZE: String(s.trainImageSize),
          TRAIN_BATCH_SIZE: String(s.trainBatchSize),
          QUALITY_GATE_MAX_AGE_MAE: String(s.qualityGateMaxAgeMae),
        },
      })
      this.trigger = new TrainingTrigger(this, 'Trigger', { bucket: this.data, trainer: this.trainer })
      new CfnOutput(this, 'JobQueueArn', { value: this.trainer.jobQueue.jobQueueArn })
      new CfnOutput(this, 'JobQueueName', { value: this.trainer.jobQueue.jobQueueName })
      new CfnOutput(this, 'JobDefinitionArn', { value: this.trainer.jobDefinition.jobDefinitionArn })
    }

    new CfnOutput(this, 'BucketName', { value: this.data.bucketName })
    new CfnOutput(this, 'PredictUrl', { value: this.predict.url.url })
  }
}
