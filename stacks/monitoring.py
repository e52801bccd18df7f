"""Notifications and monitoring of the pipeline.

- :class:`Notifications`: a KMS-encrypted SNS topic (TLS-only, optional email
  subscription) and the notify Lambda, which an EventBridge rule calls when an
  execution of the pipeline ends (SUCCEEDED, FAILED, TIMED_OUT or ABORTED).
- :class:`Monitoring`: a CloudWatch dashboard (executions by status, stage
  durations, reward statistics per grader, grader duration and errors, Bedrock
  import/deploy failures, trigger queue) and alarms that publish to the topic.

Custom metrics (namespace ``NovaCustomization``; the emitting Lambda's
``service`` is always a dimension):

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

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.notify import metric_names as names
from lambdas.notify.events import TERMINAL_STATUSES
from stacks.executions import executions_arn, executions_finding
from stacks.grants import grant_key_use, grant_object_read, grant_object_write
from stacks.lambda_defaults import METRICS_NAMESPACE, ProjectFunction
from stacks.nag import acknowledge, arn_of

# Reward Lambda metrics (lambdas/reward/handler.py), dimensions service=reward, grader=<preset>.
REWARD_SERVICE = "reward"
REWARD_MEAN = "RewardMean"
REWARD_MIN = "RewardMin"
REWARD_MAX = "RewardMax"
MALFORMED_ITEMS = "MalformedItems"
BATCH_SIZE = "BatchSize"
GRADER_ERRORS = "GraderErrors"
JUDGE_FAILURES = "JudgeFailures"
GRADING_DURATION = "GradingDuration"

NOTIFY_TIMEOUT = Duration.seconds(60)
ALARM_PERIOD = Duration.minutes(5)
# Reward collapse / jump: the 5-minute mean leaves CloudWatch's expected band (learned from the
# metric's own history) by this many standard deviations, for two consecutive periods.
REWARD_BAND_STD_DEVS = 3
REWARD_BAND_PERIODS = 2


class Notifications(Construct):
    """The run-notification topic and the Lambda that turns execution ends into messages."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_name: str,
        state_machine: sfn.IStateMachine,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
        notification_email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = self._build_topic(pipeline_name, key, notification_email)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            "SQS3",
            "This queue is itself the dead-letter queue of the notification rule's target and of the notify "
            "Lambda's asynchronous invocations (configured on those, not as a redrive policy)",
        )
        self.function = self._build_function(pipeline_name, state_machine, artifacts_bucket, key, log_retention)
        self.rule = self._build_rule(pipeline_name, state_machine)

    def _build_topic(self, pipeline_name: str, key: kms.IKey, email: str | None) -> sns.Topic:
        topic = sns.Topic(
            self,
            "RunNotifications",
            display_name=f"Nova pipeline {pipeline_name}",
            master_key=key,
            enforce_ssl=True,
        )
        # CloudWatch alarms publish to the topic themselves, so they need the key (SNS encrypts with it).
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublishToEncryptedTopics",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        if email:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def _build_function(
        self,
        pipeline_name: str,
        state_machine: sfn.IStateMachine,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> ProjectFunction:
        function = ProjectFunction(
            self,
            "NotifyFunction",
            handler="lambdas.notify.handler.lambda_handler",
            description="Publishes the outcome of every pipeline execution (metrics, gate, deployment, links)",
            service_name=names.NOTIFY_SERVICE,
            log_retention=log_retention,
            environment={
                "PIPELINE_NAME": pipeline_name,
                "ARTIFACTS_BUCKET_NAME": artifacts_bucket.bucket_name,
                "TOPIC_ARN": self.topic.topic_arn,
            },
            timeout=NOTIFY_TIMEOUT,
            memory_size_mb=256,
        )
        role = function.role
        # Reads run.json; writes run.json/report.html only for runs that could not record themselves.
        grant_object_read(role, artifacts_bucket, "runs/")
        grant_object_write(role, artifacts_bucket, "runs/")
        grant_key_use(role, key)
        # sns:Publish only (topic.grant_publish would add kms:GenerateDataKey* as well: grant_key_use covers it).
        iam.Grant.add_to_principal(grantee=role, actions=["sns:Publish"], resource_arns=[self.topic.topic_arn])
        executions = executions_arn(state_machine)
        iam.Grant.add_to_principal(grantee=role, actions=["states:GetExecutionHistory"], resource_arns=[executions])
        function.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
            retry_attempts=2,
            max_event_age=Duration.hours(6),
        )
        acknowledge(
            role,
            "IAM5",
            "Run records and reports are keyed by run id under runs/ of the artifacts bucket",
            f"Resource::{arn_of(artifacts_bucket)}/runs/*",
        )
        acknowledge(
            role,
            "IAM5",
            "Executions are named per run: the history of any execution of this one state machine is readable "
            "(to find the run id and the state where a run stopped)",
            executions_finding(state_machine),
        )
        return function

    def _build_rule(self, pipeline_name: str, state_machine: sfn.IStateMachine) -> events.Rule:
        rule = events.Rule(
            self,
            "ExecutionEnded",
            description=f"Every ended execution of pipeline {pipeline_name} (aborted ones included)",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"stateMachineArn": [state_machine.state_machine_arn], "status": list(TERMINAL_STATUSES)},
            ),
        )
        rule.add_target(
            targets.LambdaFunction(
                self.function.function,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=8,
                max_event_age=Duration.hours(24),
            )
        )
        return rule


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
    ) -> None:
        super().__init__(scope, construct_id)
        self._state_machine = state_machine
        self._graders = dict(sorted(grader_functions.items()))
        self._action = cw_actions.SnsAction(topic)
        self.alarms: dict[str, cw.Alarm] = {}
        self._build_alarms(dead_letter_queues)
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
                            f"SEARCH('{{{METRICS_NAMESPACE},service,stage}} MetricName=\"{names.STAGE_DURATION}\"', "
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
                    _metric(names.TRIGGER_SERVICE, f"trigger_{outcome}", "Sum", hour, outcome)
                    for outcome in ("started", "duplicate", "rejected", "waiting", "unrecognized")
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
        namespace=METRICS_NAMESPACE,
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
