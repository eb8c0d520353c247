import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { Validations } from 'aws-cdk-lib'
import { Annotations, Match } from 'aws-cdk-lib/assertions'
import { AwsSolutionsChecks } from 'cdk-nag'
import type { IConstruct } from 'constructs'
import { beforeAll, describe, expect, it } from 'vitest'
import { DATASET_PREFIX } from '../../core/runs.js'
import { JOB_EXIT } from '../../trainer/exit-codes.js'
import { allowed, logicalId, statementsOf, synthPipeline, type Synthesized } from './synth.js'
import { DEFAULT_PRETRAINED_URL } from '../../infra/settings.js'

// one synthesis per configuration; only the default one bundles the functions (esbuild: seconds each),
// the others skip bundling as `cdk synth --exclusively` does for stacks it does not need
let byDefault: Synthesized
let alternative: Synthesized
let predictOnly: Synthesized
const noBundling = { 'aws:cdk:bundling-stacks': [] }

beforeAll(() => {
  byDefault = synthPipeline()
  // -c values arrive as strings from the command line
  alternative = synthPipeline({
    ...noBundling,
    spot: 'false',
    instanceTypes: 'g5.xlarge, g5.2xlarge',
    maxvCpus: '16',
    bucketRemovalPolicy: 'destroy',
    predictAuth: 'AWS_IAM',
    predictReservedConcurrency: '5',
    trainEpochs: '5',
    trainPretrained: '',
    alarmEmail: 'ops@example.com',
    runnableTimeoutHours: '2',
    trainerBaseImage: `123456789012.dkr.ecr.eu-west-1.amazonaws.com/cuda@sha256:${'ab'.repeat(32)}`,
  })
  predictOnly = synthPipeline({ ...noBundling, trainer: false })
})

const jobDefinition = (s: Synthesized) => {
  const defs = Object.values(s.template.findResources('AWS::Batch::JobDefinition'))
  expect(defs).toHaveLength(1)
  return defs[0]!.Properties
}

describe('TrainerBatch', () => {
  it('requires one GPU per job on EC2', () => {
    // GIVEN the default settings  WHEN synthesized  THEN the container asks for a GPU
    byDefault.template.hasResourceProperties('AWS::Batch::JobDefinition', {
      PlatformCapabilities: ['EC2'],
      ContainerProperties: {
        ResourceRequirements: [
          { Type: 'MEMORY', Value: '14336' },
          { Type: 'VCPU', Value: '4' },
          { Type: 'GPU', Value: '1' },
        ],
      },
    })
  })

  it('scales a GPU spot environment from zero by default', () => {
    // GIVEN no context  THEN spot g4dn/g5 instances on the AL2023 NVIDIA AMI, 0 to 8 vCPUs
    byDefault.template.hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      Type: 'managed',
      ComputeResources: {
        Type: 'SPOT',
        AllocationStrategy: 'SPOT_PRICE_CAPACITY_OPTIMIZED',
        InstanceTypes: ['g4dn.xlarge', 'g5.xlarge'],
        MinvCpus: 0,
        MaxvCpus: 8,
        Ec2Configuration: [{ ImageType: 'ECS_AL2023_NVIDIA' }],
      },
    })
  })

  it('follows the spot, instanceTypes and maxvCpus context', () => {
    // GIVEN -c spot=false instanceTypes=g5.xlarge,g5.2xlarge maxvCpus=16  THEN on-demand, those types, 16 vCPUs
    alternative.template.hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      ComputeResources: {
        Type: 'EC2',
        AllocationStrategy: 'BEST_FIT_PROGRESSIVE',
        InstanceTypes: ['g5.xlarge', 'g5.2xlarge'],
        MinvCpus: 0,
        MaxvCpus: 16,
      },
    })
  })

  it('retries lost hosts, image pull errors and SIGTERM stops only, within a timeout', () => {
    // GIVEN the default job definition  THEN `Host EC2*`, pull errors and exit 75 retry, anything else
    // exits, 3 attempts, 8 h
    expect(jobDefinition(byDefault)).toMatchObject({
      RetryStrategy: {
        Attempts: 3,
        EvaluateOnExit: [
          { Action: 'RETRY', OnStatusReason: 'Host EC2*' },
          { Action: 'RETRY', OnReason: 'CannotPullContainerError*' },
          { Action: 'RETRY', OnExitCode: String(JOB_EXIT.INTERRUPTED) },
          { Action: 'EXIT', OnExitCode: '*' },
          { Action: 'EXIT', OnReason: '*' },
        ],
      },
      Timeout: { AttemptDurationSeconds: 8 * 3600 },
    })
  })

  it('passes the static job environment and logs to CloudWatch', () => {
    // GIVEN defaults, and -c trainEpochs=5  THEN the environment carries the bucket, backend and settings
    const env = (s: Synthesized) =>
      Object.fromEntries(
        (jobDefinition(s).ContainerProperties.Environment as { Name: string; Value: unknown }[]).map((e) => [
          e.Name,
          e.Value,
        ])
      )
    expect(env(byDefault)).toMatchObject({
      STORE_BUCKET: { Ref: logicalId(byDefault.stack.data.bucket) },
      AGEGENDER_BACKEND: 'tensorflow-gpu',
      TRAIN_EPOCHS: '30',
      TRAIN_IMAGE_SIZE: '128',
      TRAIN_BATCH_SIZE: '64',
      QUALITY_GATE_MAX_AGE_MAE: '12',
      CHECKPOINT_MINUTES: '10',
      // fine-tunes from torchvision's ImageNet weights by default; -c trainPretrained= trains from scratch
      TRAIN_PRETRAINED: DEFAULT_PRETRAINED_URL,
    })
    expect(DEFAULT_PRETRAINED_URL).toMatch(/^https:\/\/.*resnet18\.tv_in1k.*\.safetensors$/)
    expect(env(alternative).TRAIN_EPOCHS).toBe('5')
    expect(env(alternative)).not.toHaveProperty('TRAIN_PRETRAINED')
    // per-run values come from the trigger's containerOverrides, never from the definition
    expect(env(byDefault)).not.toHaveProperty('RUN_ID')
    expect(env(byDefault)).not.toHaveProperty('DATASET_KEY')
    expect(jobDefinition(byDefault).ContainerProperties.LogConfiguration).toMatchObject({ LogDriver: 'awslogs' })
  })

  it('launches instances with a large encrypted root volume, IMDSv2 at hop limit 1, and the newest AMI', () => {
    // GIVEN defaults  THEN the compute environment uses a launch template that keeps containers off IMDS
    const [id] = Object.keys(byDefault.template.findResources('AWS::EC2::LaunchTemplate'))
    byDefault.template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: {
        BlockDeviceMappings: [
          { DeviceName: '/dev/xvda', Ebs: { VolumeSize: 100, VolumeType: 'gp3', Encrypted: true } },
        ],
        MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 },
        UserData: Match.absent(),
      },
    })
    byDefault.template.hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      ComputeResources: { LaunchTemplate: { LaunchTemplateId: { Ref: id } } },
    })
    const ce = Object.values(byDefault.template.findResources('AWS::Batch::ComputeEnvironment'))[0]!
    expect(ce.Properties.ComputeResources.UpdateToLatestImageVersion).toBe(true)
  })

  it('cancels jobs stuck RUNNABLE after runnableTimeoutHours', () => {
    // GIVEN defaults  THEN 6 h for each blocking reason; GIVEN -c runnableTimeoutHours=2  THEN 2 h
    const actions = (s: Synthesized) =>
      Object.values(s.template.findResources('AWS::Batch::JobQueue'))[0]!.Properties.JobStateTimeLimitActions as {
        Action: string
        MaxTimeSeconds: number
        State: string
        Reason: string
      }[]
    expect(
      actions(byDefault)
        .map((a) => a.Reason)
        .sort()
    ).toEqual([
      'CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY',
      'MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE',
      'MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT',
    ])
    for (const a of actions(byDefault))
      expect(a).toMatchObject({ Action: 'CANCEL', State: 'RUNNABLE', MaxTimeSeconds: 6 * 3600 })
    for (const a of actions(alternative)) expect(a.MaxTimeSeconds).toBe(2 * 3600)
  })

  it('warns when the CUDA base image is not pinned by digest, and builds from the pinned one when given', () => {
    const warnings = (s: Synthesized) =>
      Annotations.fromStack(s.stack).findWarning('*', Match.stringLikeRegexp('not pinned by digest'))
    expect(warnings(byDefault)).toHaveLength(1)
    expect(warnings(alternative)).toHaveLength(0)
    const buildArgs = (s: Synthesized) => {
      const dir = s.app.synth().directory
      const manifest = JSON.parse(readFileSync(`${dir}/${s.stack.artifactId}.assets.json`, 'utf8')) as {
        dockerImages: Record<string, { source: { dockerFile: string; dockerBuildArgs?: Record<string, string> } }>
      }
      const images = Object.values(manifest.dockerImages).filter((i) => i.source.dockerFile === 'trainer/Dockerfile')
      expect(images).toHaveLength(1)
      return images[0]!.source.dockerBuildArgs
    }
    expect(buildArgs(alternative)).toEqual({
      CUDA_IMAGE: `123456789012.dkr.ecr.eu-west-1.amazonaws.com/cuda@sha256:${'ab'.repeat(32)}`,
    })
    expect(buildArgs(byDefault)).toBeUndefined()
  })

  it('builds its VPC without NAT gateways', () => {
    // GIVEN no VPC passed  THEN public subnets only, an S3 gateway endpoint and flow logs
    byDefault.template.resourceCountIs('AWS::EC2::NatGateway', 0)
    byDefault.template.resourceCountIs('AWS::EC2::FlowLog', 1)
    byDefault.template.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Gateway' })
  })
})

describe('DatasetBucket', () => {
  it('blocks public access, encrypts, versions and requires TLS', () => {
    // GIVEN any configuration  THEN both buckets are private and encrypted, the data bucket versioned
    const buckets = byDefault.template.findResources('AWS::S3::Bucket')
    expect(Object.keys(buckets)).toHaveLength(2)
    for (const bucket of Object.values(buckets)) {
      expect(bucket.Properties).toMatchObject({
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
      })
    }
    const data = logicalId(byDefault.stack.data.bucket)
    expect(buckets[data]!.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' })
    expect(buckets[data]!.Properties.LoggingConfiguration).toMatchObject({
      DestinationBucketName: { Ref: logicalId(byDefault.stack.data.accessLogs) },
    })
    byDefault.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: data },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    })
  })

  it('is retained by default and destroyed, emptied first, when opted out', () => {
    // GIVEN defaults  THEN Retain; GIVEN -c bucketRemovalPolicy=destroy  THEN Delete with auto-delete
    for (const bucket of Object.values(byDefault.template.findResources('AWS::S3::Bucket'))) {
      expect(bucket).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' })
    }
    byDefault.template.resourceCountIs('Custom::S3AutoDeleteObjects', 0)
    for (const bucket of Object.values(alternative.template.findResources('AWS::S3::Bucket'))) {
      expect(bucket).toMatchObject({ DeletionPolicy: 'Delete' })
    }
    alternative.template.resourceCountIs('Custom::S3AutoDeleteObjects', 2)
  })

  it('notifies the trigger of every object under datasets/ (the suffix is checked in any letter case there)', () => {
    // GIVEN the trainer is deployed  THEN one ObjectCreated notification with a prefix filter only
    const trigger = logicalId(byDefault.stack.trigger!.fn)
    const [notifications] = Object.values(byDefault.template.findResources('Custom::S3BucketNotifications'))
    const configs = notifications!.Properties.NotificationConfiguration.LambdaFunctionConfigurations as {
      Events: string[]
      Filter: { Key: { FilterRules: { Name: string; Value: string }[] } }
      LambdaFunctionArn: unknown
    }[]
    expect(configs.map((c) => Object.fromEntries(c.Filter.Key.FilterRules.map((r) => [r.Name, r.Value])))).toEqual([
      { prefix: DATASET_PREFIX },
    ])
    for (const c of configs) {
      expect(c.Events).toEqual(['s3:ObjectCreated:*'])
      expect(c.LambdaFunctionArn).toEqual({ 'Fn::GetAtt': [trigger, 'Arn'] })
    }
  })

  it('rejects a grant on something that is not a top-level prefix', () => {
    // GIVEN the bucket  WHEN granting on the whole bucket  THEN synthesis fails naming the prefix
    expect(() => byDefault.stack.data.grantRead(byDefault.stack.predict.fn, '')).toThrow(/got ''/)
  })
})

describe('IAM scope', () => {
  it('lets the job read datasets, write runs/ and models/, and list, nothing more (no deletes)', () => {
    // GIVEN the job role  THEN datasets/ is read-only and no action reaches another prefix
    const perms = allowed(statementsOf(byDefault, byDefault.stack.trainer!.jobRole))
    expect(Object.fromEntries(perms)).toEqual({
      's3:GetObject': ['bucket/datasets/*', 'bucket/models/*', 'bucket/runs/*'],
      's3:GetObjectVersion': ['bucket/datasets/*', 'bucket/models/*', 'bucket/runs/*'],
      's3:PutObject': ['bucket/models/*', 'bucket/runs/*'],
      's3:AbortMultipartUpload': ['bucket/models/*', 'bucket/runs/*'],
      's3:ListBucket': ['bucket'],
    })
  })

  it('lets the job-events function write run statuses only', () => {
    const perms = allowed(statementsOf(byDefault, byDefault.stack.jobEvents!.fn.role!))
    const s3 = Object.fromEntries([...perms].filter(([a]) => a.startsWith('s3:')))
    expect(s3).toEqual({
      's3:GetObject': ['bucket/runs/*'],
      's3:GetObjectVersion': ['bucket/runs/*'],
      's3:PutObject': ['bucket/runs/*'],
      's3:AbortMultipartUpload': ['bucket/runs/*'],
    })
  })

  it('lets predict read models/ only', () => {
    // GIVEN the predict role  THEN besides its own log stream, only object reads under models/
    const perms = allowed(statementsOf(byDefault, byDefault.stack.predict.fn.role!))
    const s3 = Object.fromEntries([...perms].filter(([a]) => a.startsWith('s3:')))
    expect(s3).toEqual({ 's3:GetObject': ['bucket/models/*'], 's3:GetObjectVersion': ['bucket/models/*'] })
    expect([...perms.keys()].filter((a) => !a.startsWith('s3:')).sort()).toEqual([
      'logs:CreateLogStream',
      'logs:PutLogEvents',
    ])
  })

  it('lets the trigger submit this job to this queue and record the run', () => {
    // GIVEN the trigger role  THEN SubmitJob on exactly the queue and definition, status writes under runs/
    const { trainer, trigger } = byDefault.stack
    const perms = allowed(statementsOf(byDefault, trigger!.fn.role!))
    expect(perms.get('batch:SubmitJob')).toEqual(
      [`<${logicalId(trainer!.jobDefinition)}>`, `<${logicalId(trainer!.jobQueue)}>`].sort()
    )
    expect(perms.get('s3:GetObject')).toEqual(['bucket/runs/*'])
    expect(perms.get('s3:PutObject')).toEqual(['bucket/runs/*'])
    expect(perms.has('s3:DeleteObject')).toBe(false)
    expect(perms.has('s3:ListBucket')).toBe(false)
  })
})

describe('functions', () => {
  const ours = (s: Synthesized) =>
    Object.values(s.template.findResources('AWS::Lambda::Function')).filter(
      (f) => f.Properties.Environment?.Variables?.STORE_BUCKET !== undefined
    )

  it('run on Node.js 22, x86_64, with source maps', () => {
    // GIVEN both configurations  THEN each of our functions (not the CDK's own providers) runs Node 22
    expect(ours(byDefault)).toHaveLength(3)
    expect(ours(predictOnly)).toHaveLength(1)
    for (const fn of [...ours(byDefault), ...ours(predictOnly)]) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['x86_64'],
        Environment: { Variables: { NODE_OPTIONS: '--enable-source-maps' } },
        LoggingConfig: { LogGroup: { Ref: expect.any(String) } },
      })
    }
  })

  it('log through Powertools at INFO, each under its own service name', () => {
    // GIVEN the default configuration  THEN every function has POWERTOOLS_SERVICE_NAME and POWERTOOLS_LOG_LEVEL
    const env = ours(byDefault).map((f) => f.Properties.Environment.Variables as Record<string, unknown>)
    expect(env.map((v) => v['POWERTOOLS_SERVICE_NAME']).sort()).toEqual([
      'agegender-job-events',
      'agegender-predict',
      'agegender-trigger',
    ])
    for (const v of env) expect(v['POWERTOOLS_LOG_LEVEL']).toBe('INFO')
  })

  it('give the trigger the queue, the definition and the bucket', () => {
    const { trainer, trigger, data } = byDefault.stack
    byDefault.template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: Match.absent(),
      Environment: {
        Variables: {
          STORE_BUCKET: { Ref: logicalId(data.bucket) },
          JOB_QUEUE_ARN: { 'Fn::GetAtt': [logicalId(trainer!.jobQueue), 'JobQueueArn'] },
          JOB_DEFINITION_ARN: { Ref: logicalId(trainer!.jobDefinition) },
        },
      },
    })
    expect(trigger).toBeDefined()
  })

  it('serve predict on a Function URL, public by default, IAM-signed on request', () => {
    // GIVEN defaults  THEN auth NONE with CORS for GET/POST; GIVEN -c predictAuth=AWS_IAM  THEN AWS_IAM
    byDefault.template.hasResourceProperties('AWS::Lambda::Url', {
      AuthType: 'NONE',
      Cors: { AllowMethods: ['GET', 'POST'], AllowOrigins: ['*'] },
    })
    alternative.template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'AWS_IAM' })
    byDefault.template.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: 2048,
      Timeout: 30,
      Environment: {
        Variables: Match.objectLike({
          WASM_PATH: '/var/task/wasm/',
          MODEL_REFRESH_SECONDS: '300',
          FACE_DETECTOR_DIR: '/var/task/face-detector/',
        }),
      },
    })
  })

  it('bundle predict with sharp, the wasm binaries and the page beside the code', () => {
    // GIVEN the synthesized predict asset  THEN it holds sharp's native packages, the .wasm files and the page
    const fn = byDefault.template.toJSON().Resources[logicalId(byDefault.stack.predict.fn)]
    const key = String(fn.Properties.Code.S3Key).replace(/\.zip$/, '')
    const dir = `${byDefault.app.synth().directory}/asset.${key}`
    for (const pkg of ['sharp', '@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64', 'detect-libc', 'semver']) {
      expect(existsSync(`${dir}/node_modules/${pkg}/package.json`), pkg).toBe(true)
    }
    expect(readdirSync(`${dir}/wasm`).filter((f) => f.endsWith('.wasm')).length).toBeGreaterThanOrEqual(1)
    // the face detector's weights, where FACE_DETECTOR_DIR points
    expect(readdirSync(`${dir}/face-detector`).sort()).toEqual(['blazeface.bin', 'blazeface.json'])
    expect(existsSync(`${dir}/index.mjs`)).toBe(true)
    for (const file of ['index.html', 'page.js', 'page.css']) expect(existsSync(`${dir}/page/${file}`), file).toBe(true)
  })
})

describe('failures reach someone', () => {
  it('sends FAILED jobs of the queue to the job-events function, undeliverable events to the dead-letter queue', () => {
    const { trainer, jobEvents, deadLetters } = byDefault.stack
    byDefault.template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.batch'],
        'detail-type': ['Batch Job State Change'],
        detail: { jobQueue: [{ 'Fn::GetAtt': [logicalId(trainer!.jobQueue), 'JobQueueArn'] }], status: ['FAILED'] },
      },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalId(jobEvents!.fn), 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalId(deadLetters!), 'Arn'] } },
        }),
      ],
    })
  })

  it('sends trigger invocations that still fail after two retries to the dead-letter queue', () => {
    const { trigger, deadLetters } = byDefault.stack
    byDefault.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: logicalId(trigger!.fn) },
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [logicalId(deadLetters!), 'Arn'] } } },
    })
  })

  it('alarms on failed jobs, function errors and throttles, dead letters and predict volume; e-mails when asked', () => {
    const names = (s: Synthesized) => s.stack.alarms.alarms.map((a) => a.node.id).sort()
    expect(names(byDefault)).toEqual([
      'FailedTrainingJobs',
      'JobEventsErrors',
      'JobEventsThrottles',
      'PredictErrors',
      'PredictInvocations',
      'PredictThrottles',
      'TriggerErrors',
      'TriggerThrottles',
      'UndeliveredEvents',
    ])
    byDefault.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Events',
      MetricName: 'TriggeredRules',
      Dimensions: [{ Name: 'RuleName', Value: { Ref: logicalId(byDefault.stack.jobEvents!.failedJobsRule) } }],
      Threshold: 1,
    })
    byDefault.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Invocations',
      Period: 3600,
      Threshold: 10000,
    })
    // no e-mail: alarms without actions and no topic
    byDefault.template.resourceCountIs('AWS::SNS::Topic', 0)
    // -c alarmEmail=...: a topic with the subscription, every alarm notifies it
    alternative.template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    })
    const topic = logicalId(alternative.stack.alarms.topic!)
    for (const alarm of Object.values(alternative.template.findResources('AWS::CloudWatch::Alarm'))) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topic }])
    }
  })

  it('keeps the logs of every function, the CDK helper functions included, for a month', () => {
    // the helper functions: the bucket-notifications handler, the default-security-group restrictor, and
    // (bucketRemovalPolicy=destroy) the auto-delete-objects provider
    const helpers = (s: Synthesized) =>
      Object.keys(s.template.findResources('AWS::Lambda::Function')).filter(
        (id) => !/^(Predict|Trigger|JobEvents)Function/.test(id)
      )
    expect(helpers(byDefault).length).toBeGreaterThanOrEqual(2)
    expect(helpers(alternative).some((id) => id.includes('AutoDeleteObjects'))).toBe(true)
    for (const s of [byDefault, alternative, predictOnly]) {
      const functions = Object.entries(s.template.findResources('AWS::Lambda::Function'))
      expect(functions.length).toBeGreaterThanOrEqual(1)
      const groups = s.template.findResources('AWS::Logs::LogGroup')
      for (const [id, fn] of functions) {
        const ref = fn.Properties.LoggingConfig?.LogGroup?.Ref as string | undefined
        expect(ref, id).toBeDefined()
        expect(groups[ref!]!.Properties.RetentionInDays, id).toBe(30)
      }
    }
  })

  it('reserves predict concurrency when asked (a cost guard for the public URL)', () => {
    alternative.template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ WASM_PATH: '/var/task/wasm/' }) },
      ReservedConcurrentExecutions: 5,
    })
  })
})

describe('PipelineStack', () => {
  it('outputs the bucket, the predict URL and the job queue', () => {
    const outputs = Object.keys(byDefault.template.findOutputs('*'))
    expect(outputs.sort()).toEqual(['BucketName', 'JobDefinitionArn', 'JobQueueArn', 'JobQueueName', 'PredictUrl'])
    expect(Object.keys(alternative.template.findOutputs('*'))).toContain('AlarmTopicArn')
    // GIVEN -c trainer=false (LocalStack)  THEN no Batch, no trigger, no job outputs
    expect(Object.keys(predictOnly.template.findOutputs('*')).sort()).toEqual(['BucketName', 'PredictUrl'])
    predictOnly.template.resourceCountIs('AWS::Batch::JobDefinition', 0)
  })

  it.each([
    ['default', () => byDefault],
    ['alternative', () => alternative],
    ['predict-only', () => predictOnly],
  ])('passes the cdk-nag AWS Solutions checks (%s)', (_name, get) => {
    // GIVEN the stack  WHEN the pack checks it  THEN nothing is left unacknowledged, warnings included
    const report = new AwsSolutionsChecks().validateScope(get().stack)
    const findings = report.violations.flatMap((v) =>
      v.violatingResources.map((r) => `${v.severity} ${v.ruleName} at ${r.constructPath}`)
    )
    expect(findings).toEqual([])
  })

  it('explains every acknowledged cdk-nag finding', () => {
    // GIVEN every acknowledgement in the tree  THEN each carries a reason of a real sentence
    const acks: [string, string][] = []
    const visit = (c: IConstruct) => {
      for (const m of c.node.metadata) {
        if (m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue
        acks.push(...Object.entries(m.data as Record<string, string>))
      }
      c.node.children.forEach(visit)
    }
    for (const s of [byDefault, alternative]) visit(s.stack)
    expect(acks.length).toBeGreaterThan(0)
    for (const [id, reason] of acks) expect(reason.length, id).toBeGreaterThan(40)
  })
})
