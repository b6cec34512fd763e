// Alarms on the queue metrics the scheduled publisher (src/queue-metrics-lambda.ts) writes every minute.
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';

export const METRICS_NAMESPACE = 'MvpLm';
export const QUEUE_DIMENSION = { Queue: 'perception' };

export function queueMetric(name: string, statistic = 'Maximum'): cloudwatch.Metric {
  return new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName: name, dimensionsMap: QUEUE_DIMENSION, statistic, period: Duration.minutes(1) });
}

export interface QueueAlarmsProps {
  topic: sns.ITopic;
  /** Oldest job still waiting after this long: workers are too few, too slow or not starting. */
  maxQueueAgeSeconds: number;
  /** Minutes jobs may wait with nothing running before "not consuming" fires (covers a GPU cold start from zero). */
  notConsumingMinutes: number;
}

export class QueueAlarms extends Construct {
  readonly queueAge: cloudwatch.Alarm;
  readonly failedJobs: cloudwatch.Alarm;
  readonly notConsuming: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: QueueAlarmsProps) {
    super(scope, id);
    this.queueAge = queueMetric('OldestWaitingAgeSeconds').createAlarm(this, 'QueueAge', {
      alarmDescription: `The oldest perception job has waited more than ${props.maxQueueAgeSeconds} s`,
      threshold: props.maxQueueAgeSeconds,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.failedJobs = queueMetric('FailedJobs', 'Sum').with({ period: Duration.minutes(5) }).createAlarm(this, 'FailedJobs', {
      alarmDescription: 'Perception jobs failed in the last 5 minutes',
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    // The failure mode operators report most: workers that stop consuming (e.g. after a Redis failover)
    // while reporting healthy. Missing data counts as breaching: a dead publisher must not look calm.
    this.notConsuming = new cloudwatch.MathExpression({
      expression: 'IF(waiting > 0 AND active == 0, 1, 0)',
      usingMetrics: { waiting: queueMetric('Waiting'), active: queueMetric('Active') },
      period: Duration.minutes(1),
      label: 'jobs waiting, none running',
    }).createAlarm(this, 'NotConsuming', {
      alarmDescription: `Jobs have waited for ${props.notConsumingMinutes} minutes with no job running`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: props.notConsumingMinutes,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    for (const a of [this.queueAge, this.failedJobs, this.notConsuming]) {
      a.addAlarmAction(new actions.SnsAction(props.topic));
      a.addOkAction(new actions.SnsAction(props.topic));
    }
  }
}
