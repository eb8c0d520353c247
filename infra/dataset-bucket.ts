/**
 * The one bucket of the pipeline: `datasets/` uploads, `runs/` training output, `models/` promoted models
 * (layout in core/runs.ts), plus the prefix-scoped grants every other construct uses.
 * @module
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib'
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam'
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership, type CfnBucket } from 'aws-cdk-lib/aws-s3'
import { Construct } from 'constructs'

export interface DatasetBucketProps {
  /**
   * What deleting the stack does to the bucket and the access-log bucket.
   *
   * With `DESTROY` both are emptied (every object version) by a custom resource and deleted.
   * @default RemovalPolicy.RETAIN - both buckets and their contents outlive the stack; delete them by hand
   */
  readonly removalPolicy?: RemovalPolicy
  /**
   * How long superseded object versions under `runs/` are kept. The trainer overwrites its checkpoint every
   * epoch, so without this a versioned bucket keeps every epoch's weights of every run.
   * @default Duration.days(7) - enough to recover from a bad overwrite, small enough not to pile up
   */
  readonly runVersionRetention?: Duration
  /**
   * How long S3 server access logs are kept.
   * @default Duration.days(90) - then expired by a lifecycle rule
   */
  readonly accessLogRetention?: Duration
}

/**
 * A private, versioned, SSE-S3 encrypted, TLS-only bucket with server access logs in a sibling bucket.
 *
 * Versioning gives each upload a version id, which the trigger turns into the run id, so re-uploading a
 * dataset under the same name starts a new run and a repeated S3 event does not.
 *
 * @example
 * const data = new DatasetBucket(this, 'Data')
 * data.grantRead(fn, 'models/')
 */
export class DatasetBucket extends Construct {
  readonly bucket: Bucket
  readonly accessLogs: Bucket

  constructor(scope: Construct, id: string, props: DatasetBucketProps = {}) {
    super(scope, id)
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN
    const destroy = removalPolicy === RemovalPolicy.DESTROY
    const common = {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy,
      autoDeleteObjects: destroy,
    }

    this.accessLogs = new Bucket(this, 'AccessLogs', {
      ...common,
      lifecycleRules: [{ expiration: props.accessLogRetention ?? Duration.days(90) }],
    })
    Validations.of(this.accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'this is the access-log bucket itself; logging it into another bucket would recurse without end',
    })

    this.bucket = new Bucket(this, 'Resource', {
      ...common,
      versioned: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'data/',
      lifecycleRules: [
        { abortIncompleteMultipartUploadAfter: Duration.days(7) },
        { prefix: 'runs/', noncurrentVersionExpiration: props.runVersionRetention ?? Duration.days(7) },
      ],
    })
  }

  get bucketName(): string {
    return this.bucket.bucketName
  }

  /** `s3:GetObject` (and `GetObjectVersion`, for pinned dataset versions) on keys starting with `prefix`. */
  grantRead(grantee: IGrantable, prefix: string): Grant {
    return this.grantObjects(grantee, prefix, ['s3:GetObject', 's3:GetObjectVersion'])
  }

  /** `s3:PutObject` (single and multipart) on keys starting with `prefix`. */
  grantPut(grantee: IGrantable, prefix: string): Grant {
    return this.grantObjects(grantee, prefix, ['s3:PutObject', 's3:AbortMultipartUpload'])
  }

  /** `s3:DeleteObject` on keys starting with `prefix` (a delete marker: versions stay until lifecycle). */
  grantDelete(grantee: IGrantable, prefix: string): Grant {
    return this.grantObjects(grantee, prefix, ['s3:DeleteObject'])
  }

  /**
   * `s3:ListBucket`: listing keys, and also what makes S3 answer 404 rather than 403 for a missing key, so
   * "no status.json yet" is distinguishable from "access denied".
   */
  grantList(grantee: IGrantable): Grant {
    return Grant.addToPrincipal({ grantee, actions: ['s3:ListBucket'], resourceArns: [this.bucket.bucketArn] })
  }

  private grantObjects(grantee: IGrantable, prefix: string, actions: string[]): Grant {
    if (!/^[a-z]+\/$/.test(prefix)) throw new Error(`grant prefix must look like 'runs/', got '${prefix}'`)
    const resourceArns = [this.bucket.arnForObjects(`${prefix}*`)]
    const grant = Grant.addToPrincipal({ grantee, actions, resourceArns })
    const principal = grantee.grantPrincipal
    if (Construct.isConstruct(principal)) {
      // cdk-nag names the finding after the bucket's logical id: `Resource::<Data2D4B752F.Arn>/runs/*`
      const logicalId: unknown = Stack.of(this).resolve((this.bucket.node.defaultChild as CfnBucket).logicalId)
      Validations.of(principal).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${String(logicalId)}.Arn>/${prefix}*]`,
        reason:
          'objects under a key prefix can only be named with a trailing wildcard; ' +
          `the grant is scoped to '${prefix}' and to the object actions the role needs`,
      })
    }
    return grant
  }
}
