/**
 * Alarms: failed training jobs, function errors and throttles, undeliverable events, and a cost guard on
 * the predict endpoint, optionally e-mailed through an SNS topic (`-c alarmEmail=you@example.com`).
 * @module
 */
import { Duration, Validations } from 'aws-cdk-lib'
import { Alarm, ComparisonOperator, Metric, TreatMissingData, type IMetric } from 'aws-cdk-lib/aws-cloudwatch'
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions'
import type { IRule } from 'aws-cdk-lib/aws-events'
import type { IFunction } from 'aws-cdk-lib/aws-lambda'
import { Topic } from 'aws-cdk-lib/aws-sns'
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions'
import type { IQueue } from 'aws-cdk-lib/aws-sqs'
import { Construct } from 'constructs'

export interface AlarmsProps {
  /** Every function whose errors and throttles should alarm, by a short name used in the alarm id. */
  readonly functions: Readonly<Record<string, IFunction>>
  /** The rule matching failed training jobs: one alarm per period with any. */
  readonly failedJobsRule?: IRule
  /** Events that could not be delivered after retries. */
  readonly deadLetterQueue?: IQueue
  /** The predict function: an alarm when it is invoked more than `predictInvocationsPerHour` times an hour. */
  readonly predict?: IFunction
  /** @default 10000 */
  readonly predictInvocationsPerHour?: number
  /** Subscribe this address to the alarm topic (it must confirm the subscription e-mail). @default - no topic */
  readonly email?: string
}

export class Alarms extends Construct {
  readonly alarms: Alarm[] = []
  /** Present when `email` is given. */
  readonly topic?: Topic

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id)
    if (props.email) {
      this.topic = new Topic(this, 'Topic', { displayName: 'agegender pipeline alarms', enforceSSL: true })
      this.topic.addSubscription(new EmailSubscription(props.email))
      Validations.of(this.topic).acknowledge({
        id: 'AwsSolutions-SNS2',
        reason:
          'alarm notifications carry only alarm names and states, no data; a customer managed KMS key would ' +
          'cost a monthly fee and need a key policy for CloudWatch, an AWS managed key cannot grant it',
      })
    }
    const anyIn = (name: string, metric: IMetric, description: string) =>
      this.add(name, metric, 1, description, ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD)

    for (const [name, fn] of Object.entries(props.functions)) {
      anyIn(
        `${name}Errors`,
        fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        `${name} function errors`
      )
      anyIn(
        `${name}Throttles`,
        fn.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' }),
        `${name} function throttled`
      )
    }
    if (props.failedJobsRule) {
      const failed = new Metric({
        namespace: 'AWS/Events',
        metricName: 'TriggeredRules',
        dimensionsMap: { RuleName: props.failedJobsRule.ruleName },
        statistic: 'Sum',
        period: Duration.minutes(5),
      })
      anyIn('FailedTrainingJobs', failed, 'a training job failed: see runs/<runId>/status.json for the reason')
    }
    if (props.deadLetterQueue) {
      anyIn(
        'UndeliveredEvents',
        props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: 'Maximum',
        }),
        'an upload or job event could not be handled after retries: read the dead-letter queue'
      )
    }
    if (props.predict) {
      const limit = props.predictInvocationsPerHour ?? 10_000
      this.add(
        'PredictInvocations',
        props.predict.metricInvocations({ period: Duration.hours(1), statistic: 'Sum' }),
        limit,
        `predict was called more than ${limit} times in an hour (cost guard for the endpoint)`,
        ComparisonOperator.GREATER_THAN_THRESHOLD
      )
    }
  }

  private add(id: string, metric: IMetric, threshold: number, description: string, op: ComparisonOperator): void {
    const alarm = new Alarm(this, id, {
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: op,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    })
    if (this.topic) alarm.addAlarmAction(new SnsAction(this.topic))
    this.alarms.push(alarm)
  }
}
