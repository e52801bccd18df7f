"""Monitoring of the pipeline.

:class:`Monitoring`: a CloudWatch dashboard (executions by status, stage durations, reward
statistics per grader, grader duration and errors, Bedrock import/deploy failures, trigger
outcomes and queues) and alarms that publish to the notifications topic (``stacks/notifications.py``).
The topic's policy lets ``cloudwatch.amazonaws.com`` publish for exactly these alarms (their ARNs
as ``aws:SourceArn``, this account as ``aws:SourceAccount``): the topic policy that ``enforce_ssl``
writes replaces SNS's default one, so without that statement no alarm could notify anybody.

Custom metrics (names in ``lambdas/common/metric_names.py``, namespace ``NovaCustomization``;
the emitting Lambda's ``service`` is always a dimension):

- reward Lambda (service=reward, grader=<preset>): ``RewardMean``, ``RewardMin``,
  ``RewardMax``, ``MalformedItems``, ``BatchSize``, ``GraderErrors``,
  ``JudgeFailures``, ``GradingDuration`` (ms);
- notify Lambda (service=notify): ``stage_duration`` (s, plus dimension ``stage``),
  ``bedrock_import_failures``, ``bedrock_deployment_failures``, ``gate_rejections``,
  ``runs_notified``, ``runs_recorded_by_notifier``;
- trigger Lambda (service=trigger): ``trigger_started``, ``trigger_duplicate``,
  ``trigger_rejected``, ``trigger_ignored``, ``trigger_waiting``, ``trigger_unrecognized``.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.common import metric_names as names
from lambdas.common.metric_names import (
    BATCH_SIZE,
    GRADER_ERRORS,
    GRADING_DURATION,
    JUDGE_FAILURES,
    MALFORMED_ITEMS,
    REWARD_MAX,
    REWARD_MEAN,
    REWARD_MIN,
    REWARD_SERVICE,
)
from stacks.notifications import CLOUDWATCH

ALARM_PERIOD = Duration.minutes(5)
# Reward collapse / jump: the 5-minute mean leaves CloudWatch's expected band (learned from the
# metric's own history) by this many standard deviations, for two consecutive periods.
REWARD_BAND_STD_DEVS = 3
REWARD_BAND_PERIODS = 2


class Monitoring(Construct):
    """The pipeline's dashboard and alarms (every alarm notifies the topic)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_name: str,
        state_machine: sfn.IStateMachine,
        topic: sns.ITopic,
        grader_functions: Mapping[str, lambda_.IFunction],
        dead_letter_queues: Mapping[str, sqs.IQueue],
        trigger_queue: sqs.IQueue | None = None,
        oldest_message_alarm: Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._state_machine = state_machine
        self._graders = dict(sorted(grader_functions.items()))
        self._action = cw_actions.SnsAction(topic)
        self.alarms: dict[str, cw.Alarm] = {}
        self._build_alarms(dead_letter_queues)
        if trigger_queue is not None and oldest_message_alarm is not None:
            self._alarm_on_oldest_message(trigger_queue, oldest_message_alarm)
        self._allow_alarms_to_publish(topic)
        self.dashboard = self._build_dashboard(pipeline_name, dead_letter_queues, trigger_queue)

    # Alarms ------------------------------------------------------------------------------

    def _alarm(self, construct_id: str, alarm: cw.Alarm) -> cw.Alarm:
        alarm.add_alarm_action(self._action)
        self.alarms[construct_id] = alarm
        return alarm

    def _build_alarms(self, dead_letter_queues: Mapping[str, sqs.IQueue]) -> None:
        sm = self._state_machine
        failed_runs = cw.MathExpression(
            expression="failed + timedOut",
            using_metrics={
                "failed": sm.metric_failed(statistic="Sum"),
                "timedOut": sm.metric_timed_out(statistic="Sum"),
            },
            period=ALARM_PERIOD,
            label="Failed or timed-out executions",
        )
        self._alarm(
            "ExecutionsFailed",
            cw.Alarm(
                self,
                "ExecutionsFailed",
                alarm_description="A pipeline execution failed or timed out (the run notification says where and why)",
                metric=failed_runs,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
        )
        for preset, function in self._graders.items():
            suffix = _pascal(preset)
            errors = cw.MathExpression(
                expression="errors + throttles",
                using_metrics={
                    "errors": function.metric_errors(statistic="Sum"),
                    "throttles": function.metric_throttles(statistic="Sum"),
                },
                period=ALARM_PERIOD,
                label=f"{preset} errors + throttles",
            )
            self._alarm(
                f"GraderErrors{suffix}",
                cw.Alarm(
                    self,
                    f"GraderErrors{suffix}",
                    alarm_description=f"The {preset} reward Lambda failed or was throttled: RFT rollouts lose rewards",
                    metric=errors,
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                ),
            )
            mean = reward_metric(preset, REWARD_MEAN, "Average", ALARM_PERIOD)
            for name, operator, meaning in (
                ("RewardCollapse", cw.ComparisonOperator.LESS_THAN_LOWER_THRESHOLD, "collapsed below"),
                ("RewardJump", cw.ComparisonOperator.GREATER_THAN_UPPER_THRESHOLD, "jumped above"),
            ):
                self._alarm(
                    f"{name}{suffix}",
                    cw.AnomalyDetectionAlarm(
                        self,
                        f"{name}{suffix}",
                        alarm_description=(
                            f"The mean {preset} reward {meaning} its expected band for "
                            f"{REWARD_BAND_PERIODS * 5} minutes"
                            + (
                                ": check for reward hacking (format gaming, hedging, padded answers)"
                                if name == "RewardJump"
                                else ": check the policy, the data and the grader"
                            )
                        ),
                        metric=mean,
                        std_devs=REWARD_BAND_STD_DEVS,
                        evaluation_periods=REWARD_BAND_PERIODS,
                        datapoints_to_alarm=REWARD_BAND_PERIODS,
                        comparison_operator=operator,
                        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                    ),
                )
        for label, queue in dead_letter_queues.items():
            self._alarm(
                f"DeadLetters{_pascal(label)}",
                cw.Alarm(
                    self,
                    f"DeadLetters{_pascal(label)}",
                    alarm_description=f"Messages in the {label} dead-letter queue: something was not processed",
                    metric=queue.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=ALARM_PERIOD
                    ),
                    threshold=1,
                    evaluation_periods=1,
                    comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                ),
            )

    def _alarm_on_oldest_message(self, queue: sqs.IQueue, threshold: Duration) -> None:
        """The trigger queue stops draining: its oldest request has waited longer than one whole run."""
        self._alarm(
            "TriggerQueueOldestMessage",
            cw.Alarm(
                self,
                "TriggerQueueOldestMessage",
                alarm_description=f"A run request has waited more than {threshold.to_hours()} h in the trigger "
                "queue: runs ahead of it are stuck, or its errors do not clear (the trigger's log says which)",
                metric=queue.metric_approximate_age_of_oldest_message(statistic="Maximum", period=ALARM_PERIOD),
                threshold=threshold.to_seconds(),
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
        )

    def _allow_alarms_to_publish(self, topic: sns.ITopic) -> None:
        """Topic-policy statement: CloudWatch may publish to the topic for this construct's alarms only.

        The alarms refer to the topic, not the topic to the alarms, so the topic policy (a resource of
        its own) can name the alarms' ARNs without a circular dependency.
        """
        result = topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThePipelineAlarmsToPublish",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Stack.of(self).account},
                    "ArnEquals": {"aws:SourceArn": [alarm.alarm_arn for alarm in self.alarms.values()]},
                },
            )
        )
        if not result.statement_added:
            raise ValueError(f"{topic.node.path}: the alarms need a topic of this stack (its policy is set here)")

    # Dashboard ---------------------------------------------------------------------------

    def _build_dashboard(
        self, pipeline_name: str, dead_letter_queues: Mapping[str, sqs.IQueue], trigger_queue: sqs.IQueue | None
    ) -> cw.Dashboard:
        sm = self._state_machine
        hour = Duration.hours(1)
        dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.days(14))
        dashboard.add_widgets(
            cw.TextWidget(
                markdown=(
                    f"# Nova customization pipeline `{pipeline_name}`\n"
                    "Runs start from the console, from a request uploaded to "
                    f"`requests/{pipeline_name}/` in the data bucket, from a `_READY` marker under "
                    f"`datasets/{pipeline_name}/`, or on the retraining schedule. Reports: "
                    "`runs/<run-id>/report.html` in the artifacts bucket."
                ),
                width=24,
                height=2,
            )
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Executions by status",
                left=[
                    sm.metric_started(statistic="Sum", period=hour, label="started"),
                    sm.metric_succeeded(statistic="Sum", period=hour, label="succeeded"),
                    sm.metric_failed(statistic="Sum", period=hour, label="failed"),
                    sm.metric_timed_out(statistic="Sum", period=hour, label="timed out"),
                    sm.metric_aborted(statistic="Sum", period=hour, label="aborted"),
                ],
                stacked=True,
                view=cw.GraphWidgetView.TIME_SERIES,
                width=12,
            ),
            cw.GraphWidget(
                title="Execution time (hours)",
                left=[
                    cw.MathExpression(
                        expression="time / 3600000",
                        using_metrics={"time": sm.metric_time(statistic="Maximum", period=hour)},
                        label="longest execution",
                        period=hour,
                    )
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Stage durations (hours, from run records)",
                left=[
                    cw.MathExpression(
                        expression=(
                            f"SEARCH('{{{names.NAMESPACE},service,stage}} MetricName=\"{names.STAGE_DURATION}\"', "
                            "'Maximum', 3600) / 3600"
                        ),
                        label="",
                        period=hour,
                    )
                ],
                view=cw.GraphWidgetView.BAR,
                width=12,
            ),
            cw.GraphWidget(
                title="Bedrock import / deployment failures and gate rejections",
                left=[
                    _notify_metric(names.BEDROCK_IMPORT_FAILURES, "import failures"),
                    _notify_metric(names.BEDROCK_DEPLOYMENT_FAILURES, "deployment failures"),
                    _notify_metric(names.GATE_REJECTIONS, "gate rejections"),
                ],
                width=12,
            ),
        )
        for preset, function in self._graders.items():
            minute = Duration.minutes(1)
            dashboard.add_widgets(
                cw.GraphWidget(
                    title=f"Reward ({preset}): mean / min / max per batch",
                    left=[
                        reward_metric(preset, REWARD_MEAN, "Average", minute, "mean"),
                        reward_metric(preset, REWARD_MIN, "Minimum", minute, "min"),
                        reward_metric(preset, REWARD_MAX, "Maximum", minute, "max"),
                    ],
                    width=8,
                ),
                cw.GraphWidget(
                    title=f"Malformed responses and judge failures ({preset})",
                    left=[
                        cw.MathExpression(
                            expression="100 * malformed / FILL(items, 1)",
                            using_metrics={
                                "malformed": reward_metric(preset, MALFORMED_ITEMS, "Sum", minute),
                                "items": reward_metric(preset, BATCH_SIZE, "Sum", minute),
                            },
                            label="malformed rate (%)",
                            period=minute,
                        )
                    ],
                    right=[
                        reward_metric(preset, JUDGE_FAILURES, "Sum", minute, "judge failures"),
                        reward_metric(preset, GRADER_ERRORS, "Sum", minute, "grader errors on items"),
                    ],
                    width=8,
                ),
                cw.GraphWidget(
                    title=f"Grader duration and errors ({preset})",
                    left=[
                        function.metric_duration(statistic="p50", period=minute, label="Lambda p50 (ms)"),
                        function.metric_duration(statistic="p99", period=minute, label="Lambda p99 (ms)"),
                        reward_metric(preset, GRADING_DURATION, "Average", minute, "grading (ms)"),
                    ],
                    right=[
                        function.metric_errors(statistic="Sum", period=minute, label="errors"),
                        function.metric_throttles(statistic="Sum", period=minute, label="throttles"),
                    ],
                    width=8,
                ),
            )
        queue_metrics = [
            q.metric_approximate_number_of_messages_visible(statistic="Maximum", label=f"{label} DLQ")
            for label, q in dead_letter_queues.items()
        ]
        if trigger_queue is not None:
            queue_metrics.insert(
                0,
                trigger_queue.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", label="requests waiting"
                ),
            )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Trigger outcomes",
                left=[
                    _metric(names.TRIGGER_SERVICE, name, "Sum", hour, label) for name, label in names.TRIGGER_METRICS
                ],
                width=12,
            ),
            cw.GraphWidget(title="Queues", left=queue_metrics, width=12),
        )
        dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=4)
        )
        return dashboard


def _metric(
    service: str,
    name: str,
    statistic: str,
    period: Duration,
    label: str | None = None,
    dimensions: Mapping[str, str] | None = None,
) -> cw.Metric:
    return cw.Metric(
        namespace=names.NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service, **(dimensions or {})},
        statistic=statistic,
        period=period,
        label=label,
    )


def reward_metric(preset: str, name: str, statistic: str, period: Duration, label: str | None = None) -> cw.Metric:
    """A reward Lambda metric of one grader preset (dimensions service=reward, grader=<preset>)."""
    return _metric(REWARD_SERVICE, name, statistic, period, label, {"grader": preset})


def _notify_metric(name: str, label: str) -> cw.Metric:
    return _metric(names.NOTIFY_SERVICE, name, "Sum", Duration.hours(1), label)


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))
