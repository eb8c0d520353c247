/**
 * TrainerBatch: the GPU training job on AWS Batch (compute environment that scales to zero, queue, job
 * definition running the trainer/ image), and the grant to submit it.
 * @module
 */
import { Annotations, Duration, RemovalPolicy, Size, Stack, Validations } from 'aws-cdk-lib'
import {
  Action,
  EcsEc2ContainerDefinition,
  EcsJobDefinition,
  EcsMachineImageType,
  JobQueue,
  JobStateTimeLimitActionsAction,
  JobStateTimeLimitActionsReason,
  JobStateTimeLimitActionsState,
  LinuxParameters,
  ManagedEc2EcsComputeEnvironment,
  Reason,
  RetryStrategy,
} from 'aws-cdk-lib/aws-batch'
import {
  BlockDeviceVolume,
  EbsDeviceVolumeType,
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  InstanceType,
  LaunchTemplate,
  LaunchTemplateHttpTokens,
  SubnetType,
  Vpc,
  type IVpc,
  type SubnetSelection,
} from 'aws-cdk-lib/aws-ec2'
import { DockerImageAsset, Platform } from 'aws-cdk-lib/aws-ecr-assets'
import { ContainerImage, LogDriver } from 'aws-cdk-lib/aws-ecs'
import { Role, ServicePrincipal, type IGrantable } from 'aws-cdk-lib/aws-iam'
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs'
import { Construct } from 'constructs'
import { JOB_EXIT } from '../trainer/exit-codes.js'
import type { DatasetBucket } from './dataset-bucket.js'
import { repoRoot } from './paths.js'

/** The trainer/Dockerfile default; a tag, which NVIDIA may delete or move (see infra/README.md, "Trainer image"). */
export const DEFAULT_CUDA_IMAGE = 'nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04'

/** How cdk-nag spells an AWS managed policy ARN in a finding id. */
const MANAGED_POLICY = 'arn:<AWS::Partition>:iam::aws:policy'

export interface TrainerBatchProps {
  /** Where datasets are read and runs and models written. */
  readonly bucket: DatasetBucket
  /**
   * The network for the GPU instances. Instances need outbound internet (ECR, S3, CloudWatch, Batch),
   * either through public subnets or through NAT.
   * @default - a new VPC: public subnets only in up to 3 AZs, no NAT gateway, an S3 gateway endpoint
   */
  readonly vpc?: IVpc
  /**
   * Subnets of `vpc` to launch instances in.
   * @default - the public subnets
   */
  readonly vpcSubnets?: SubnetSelection
  /**
   * GPU instance types, each with one GPU and at least `jobVcpus` vCPUs and `jobMemory` + ~1 GiB memory.
   * @default ['g4dn.xlarge', 'g5.xlarge'] - 1× T4 or 1× A10G, 4 vCPUs, 16 GiB
   */
  readonly instanceTypes?: string[]
  /**
   * Spot instead of on-demand capacity. Spot interruptions are retried (the trainer resumes from its
   * checkpoint), so spot is the default.
   * @default true
   */
  readonly spot?: boolean
  /**
   * Most vCPUs running at once; with `minvCpus` 0 the environment has no instances while the queue is empty.
   * @default 8 - two 4-vCPU jobs side by side
   */
  readonly maxvCpus?: number
  /**
   * ECS-optimized GPU AMI family.
   * @default EcsMachineImageType.ECS_AL2023_NVIDIA - AL2 ECS AMIs reached end of support in June 2026;
   *   their NVIDIA driver still runs the CUDA 11.2 image (drivers are backward compatible)
   */
  readonly imageType?: EcsMachineImageType
  /** @default 4 - all of a g4dn/g5.xlarge; sharp decodes images on every core */
  readonly jobVcpus?: number
  /**
   * Container memory. Must fit what ECS registers for the instance (16 GiB minus the agent's reserve),
   * or jobs wait in RUNNABLE forever.
   * @default Size.gibibytes(14)
   */
  readonly jobMemory?: Size
  /** @default Duration.hours(8) - Batch stops an attempt that runs longer */
  readonly timeout?: Duration
  /**
   * Attempts in total. Lost hosts (`Host EC2*`: spot reclaims), image pull errors and SIGTERM stops
   * (exit code 75, after a checkpoint) are retried; any other failure is final.
   * @default 3
   */
  readonly retryAttempts?: number
  /**
   * Static training settings for every run (`TRAIN_EPOCHS`, `TRAIN_IMAGE_SIZE`, `TRAIN_BATCH_SIZE`,
   * `QUALITY_GATE_MAX_AGE_MAE`, ...; see trainer/bin/job.ts).
   * @default - the trainer's own defaults
   */
  readonly environment?: Record<string, string>
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays
  /**
   * Root EBS volume of the GPU instances (gp3, encrypted). The ECS GPU AMI's default (30 GiB) is tight for
   * the ~6 GB trainer image, its unpacked layers and a second image version during an update.
   * @default Size.gibibytes(100)
   */
  readonly rootVolumeSize?: Size
  /**
   * How long a job may wait RUNNABLE (no capacity, no GPU quota, or no instance type that fits it) before the
   * queue cancels it; the cancellation reaches the run's status through the job-events function.
   * Batch accepts 10 minutes to 24 hours.
   * @default Duration.hours(6)
   */
  readonly runnableTimeout?: Duration
  /**
   * Base image of trainer/Dockerfile (`CUDA_IMAGE` build argument), best a digest-pinned copy in your own ECR
   * (`<account>.dkr.ecr.<region>.amazonaws.com/cuda@sha256:…`). A reference without `@sha256:` gets a
   * synthesis warning.
   * @default DEFAULT_CUDA_IMAGE
   */
  readonly cudaImage?: string
}

/**
 * Runs `trainer/bin/job.ts` in the trainer/Dockerfile image on one GPU per job.
 *
 * The job definition sets `STORE_BUCKET`, `AWS_REGION`, `AGEGENDER_BACKEND=tensorflow-gpu` and the static
 * training settings. Each submission passes the run through
 * `containerOverrides.environment`: `DATASET_KEY`, `DATASET_VERSION`, `RUN_ID`.
 *
 * The job role may read `datasets/*`, read and write `runs/*` and `models/*`, and list the bucket (the
 * trainer lists its model; listing also turns a missing key into a 404); nothing else, no deletes.
 *
 * Instances get a root volume sized for the image, IMDSv2 with a hop limit of 1 (containers cannot reach the
 * instance role), and the newest ECS GPU AMI (`updateToLatestImageVersion`). Jobs stuck RUNNABLE longer than
 * `runnableTimeout` are cancelled.
 *
 * A new VPC has public subnets only: a NAT gateway costs ~$32/month per AZ plus $0.045/GB, more than
 * the occasional training run it would serve. Instances get public IPs but their security group allows
 * no inbound traffic, and S3 traffic stays on the free gateway endpoint.
 */
export class TrainerBatch extends Construct {
  readonly vpc: IVpc
  readonly computeEnvironment: ManagedEc2EcsComputeEnvironment
  readonly jobQueue: JobQueue
  readonly jobDefinition: EcsJobDefinition
  readonly jobRole: Role

  constructor(scope: Construct, id: string, props: TrainerBatchProps) {
    super(scope, id)
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH
    this.vpc = props.vpc ?? this.newVpc(logRetention)

    // root volume sized for the image, and IMDSv2 with a hop limit of 1: a container (one hop further,
    // bridge network) cannot reach the instance metadata service and so cannot take the instance role;
    // jobs get their own role from the ECS credentials endpoint and AWS_REGION from the job definition
    const launchTemplate = new LaunchTemplate(this, 'LaunchTemplate', {
      blockDevices: [
        {
          deviceName: '/dev/xvda', // the root device of the ECS-optimized AL2023 and AL2 AMIs
          volume: BlockDeviceVolume.ebs((props.rootVolumeSize ?? Size.gibibytes(100)).toGibibytes(), {
            volumeType: EbsDeviceVolumeType.GP3,
            encrypted: true,
            deleteOnTermination: true,
          }),
        },
      ],
      requireImdsv2: true,
      httpTokens: LaunchTemplateHttpTokens.REQUIRED,
      httpPutResponseHopLimit: 1,
    })

    this.computeEnvironment = new ManagedEc2EcsComputeEnvironment(this, 'ComputeEnvironment', {
      launchTemplate,
      // instances launched after AWS publishes a new ECS GPU AMI (driver and security fixes) use it
      updateToLatestImageVersion: true,
      vpc: this.vpc,
      vpcSubnets: props.vpcSubnets ?? { subnetType: SubnetType.PUBLIC },
      instanceTypes: (props.instanceTypes ?? ['g4dn.xlarge', 'g5.xlarge']).map((t) => new InstanceType(t)),
      useOptimalInstanceClasses: false,
      spot: props.spot ?? true,
      minvCpus: 0,
      maxvCpus: props.maxvCpus ?? 8,
      images: [{ imageType: props.imageType ?? EcsMachineImageType.ECS_AL2023_NVIDIA }],
    })
    Validations.of(this.computeEnvironment).acknowledge({
      id: `AwsSolutions-IAM4[Policy::${MANAGED_POLICY}/service-role/AmazonEC2ContainerServiceforEC2Role]`,
      reason:
        'the instance role AWS Batch documents for ECS container instances: the ECS agent registers the ' +
        'instance, pulls images and ships logs with it; AWS keeps it current with the agent',
    })

    const runnableTimeout = props.runnableTimeout ?? Duration.hours(6)
    this.jobQueue = new JobQueue(this, 'Queue', {
      computeEnvironments: [{ computeEnvironment: this.computeEnvironment, order: 1 }],
      // a job that cannot be placed is cancelled (and its run marked failed) instead of waiting forever
      jobStateTimeLimitActions: [
        JobStateTimeLimitActionsReason.INSUFFICIENT_INSTANCE_CAPACITY,
        JobStateTimeLimitActionsReason.COMPUTE_ENVIRONMENT_MAX_RESOURCE,
        JobStateTimeLimitActionsReason.JOB_RESOURCE_REQUIREMENT,
      ].map((reason) => ({
        action: JobStateTimeLimitActionsAction.CANCEL,
        state: JobStateTimeLimitActionsState.RUNNABLE,
        maxTime: runnableTimeout,
        reason,
      })),
    })

    this.jobRole = new Role(this, 'JobRole', { assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com') })
    props.bucket.grantRead(this.jobRole, 'datasets/')
    // no s3:DeleteObject: checkpoints alternate between two slots, nothing is ever deleted
    for (const prefix of ['runs/', 'models/']) {
      props.bucket.grantRead(this.jobRole, prefix)
      props.bucket.grantPut(this.jobRole, prefix)
    }
    // unconditioned: besides listing runs/<id>/ it makes S3 answer 404, not 403, for keys that do not exist
    // yet (the first checkpoint/state.json, the first models/latest.json), which the job relies on
    props.bucket.grantList(this.jobRole)

    // the build context is the repository root (the image needs core/ and package.json); the root
    // .dockerignore lets only those in, which also keeps the asset hash stable
    const cudaImage = props.cudaImage ?? DEFAULT_CUDA_IMAGE
    if (!/@sha256:[0-9a-f]{64}$/.test(cudaImage)) {
      Annotations.of(this).addWarningV2(
        'agegender:unpinnedCudaImage',
        `the trainer's base image ${cudaImage} is not pinned by digest; mirror it into ECR and pass ` +
          '-c trainerBaseImage=<repo>@sha256:<digest> (infra/README.md, "Trainer image")'
      )
    }
    const image = new DockerImageAsset(this, 'Image', {
      directory: repoRoot,
      file: 'trainer/Dockerfile',
      platform: Platform.LINUX_AMD64,
      ...(props.cudaImage ? { buildArgs: { CUDA_IMAGE: props.cudaImage } } : {}),
    })
    const logGroup = new LogGroup(this, 'JobLogs', {
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    })

    this.jobDefinition = new EcsJobDefinition(this, 'JobDefinition', {
      container: new EcsEc2ContainerDefinition(this, 'Container', {
        image: ContainerImage.fromDockerImageAsset(image),
        gpu: 1,
        cpu: props.jobVcpus ?? 4,
        memory: props.jobMemory ?? Size.gibibytes(14),
        jobRole: this.jobRole,
        environment: {
          ...props.environment,
          STORE_BUCKET: props.bucket.bucketName,
          // the SDK does not read the region from instance metadata
          AWS_REGION: Stack.of(this).region,
          AGEGENDER_BACKEND: 'tensorflow-gpu',
        },
        logging: LogDriver.awsLogs({ streamPrefix: 'trainer', logGroup }),
        // an init process as PID 1 forwards Batch's SIGTERM to tsx, so the trainer can stop cleanly
        linuxParameters: new LinuxParameters(this, 'LinuxParameters', { initProcessEnabled: true }),
      }),
      timeout: props.timeout ?? Duration.hours(8),
      retryAttempts: props.retryAttempts ?? 3,
      // first match wins (Batch takes at most 5): retry a lost host (spot reclaim, host failure: AWS's
      // documented pattern), an image pull that failed, and the trainer's "stopped by SIGTERM after a
      // checkpoint" exit code; give up on anything else, since re-running a failing training rarely helps.
      // The exit-code rule also catches a plain non-zero exit, which carries no reason to match.
      retryStrategies: [
        RetryStrategy.of(Action.RETRY, Reason.SPOT_INSTANCE_RECLAIMED),
        RetryStrategy.of(Action.RETRY, Reason.custom({ onReason: 'CannotPullContainerError*' })),
        RetryStrategy.of(Action.RETRY, Reason.custom({ onExitCode: String(JOB_EXIT.INTERRUPTED) })),
        RetryStrategy.of(Action.EXIT, Reason.NON_ZERO_EXIT_CODE),
        RetryStrategy.of(Action.EXIT, Reason.custom({ onReason: '*' })),
      ],
      propagateTags: true,
    })
    Validations.of(this.jobDefinition.container.executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ecr:GetAuthorizationToken, which the ECS agent needs to pull the image, cannot be scoped to a ' +
        'resource; the pull actions themselves are limited to the asset repository',
    })
  }

  /** Allows `grantee` to submit this job definition to this queue, and nothing else. */
  grantSubmitJob(grantee: IGrantable): void {
    this.jobDefinition.grantSubmitJob(grantee, this.jobQueue)
  }

  private newVpc(logRetention: RetentionDays): Vpc {
    const flowLogs = new LogGroup(this, 'FlowLogs', {
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    })
    return new Vpc(this, 'Vpc', {
      maxAzs: 3, // more AZs, more spot capacity pools; an environment-agnostic stack gets 2
      natGateways: 0,
      subnetConfiguration: [{ name: 'Public', subnetType: SubnetType.PUBLIC, cidrMask: 24 }],
      gatewayEndpoints: { S3: { service: GatewayVpcEndpointAwsService.S3 } },
      flowLogs: {
        All: { trafficType: FlowLogTrafficType.ALL, destination: FlowLogDestination.toCloudWatchLogs(flowLogs) },
      },
    })
  }
}
