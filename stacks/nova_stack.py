"""The one deployable stack: it composes the project's constructs and wires their grants."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack, Tags
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import PipelineSettings
from stacks.graders import Graders
from stacks.identity import Identity
from stacks.monitoring import Monitoring
from stacks.notifications import Notifications
from stacks.pipeline import Pipeline
from stacks.run_lock import RunLock
from stacks.storage import Storage
from stacks.triggers import OLDEST_MESSAGE_ALARM_SECONDS, Triggers


class NovaCustomizationStack(Stack):
    """Buckets, roles, grader functions, the pipeline state machine, triggers and monitoring."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: PipelineSettings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.log_retention = _retention(settings.log_retention_days)

        self.storage = Storage(self, "Storage", retain_data=settings.retain_data)
        self.identity = Identity(
            self,
            "Identity",
            artifacts_bucket=self.storage.artifacts_bucket,
            key=self.storage.key,
        )
        self.graders = Graders(
            self,
            "SageMakerGraders",
            invokers=[self.identity.sagemaker_role, self.identity.bedrock_customization_role],
            log_retention=self.log_retention,
            reserved_concurrency=settings.grader_reserved_concurrency,
        )
        self.run_lock = RunLock(self, "RunLock")
        self.pipeline = Pipeline(
            self,
            "Pipeline",
            data_bucket=self.storage.data_bucket,
            artifacts_bucket=self.storage.artifacts_bucket,
            key=self.storage.key,
            identity=self.identity,
            graders=self.graders.functions,
            log_retention=self.log_retention,
            pipeline_name=settings.pipeline_name,
            region=settings.region,
            run_lock=self.run_lock,
            reserved_concurrency=settings.stage_reserved_concurrency,
            run_policy=settings.run_policy,
            model_retention=settings.model_retention,
            approval_required=settings.approval_required,
            approval_timeout_hours=settings.approval_timeout_hours,
        )
        self.notifications = Notifications(
            self,
            "Notifications",
            pipeline_name=settings.pipeline_name,
            state_machine=self.pipeline.state_machine,
            artifacts_bucket=self.storage.artifacts_bucket,
            key=self.storage.key,
            log_retention=self.log_retention,
            notification_email=settings.notification_email,
            run_lock=self.run_lock,
        )
        self.pipeline.connect_topic(self.notifications.topic)
        self.triggers = Triggers(
            self,
            "Triggers",
            pipeline_name=settings.pipeline_name,
            state_machine=self.pipeline.state_machine,
            data_bucket=self.storage.data_bucket,
            key=self.storage.key,
            log_retention=self.log_retention,
            retrain_schedule=settings.retrain_schedule,
            topic=self.notifications.topic,
            run_lock=self.run_lock,
        )
        self.storage.restrict_writers(
            settings.writers, project_roles=[self.triggers.function.role, self.pipeline.approval_function.role]
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            pipeline_name=settings.pipeline_name,
            state_machine=self.pipeline.state_machine,
            topic=self.notifications.topic,
            grader_functions=self.graders.functions,
            dead_letter_queues={
                "trigger": self.triggers.dead_letter_queue,
                "notify": self.notifications.dead_letter_queue,
            },
            trigger_queue=self.triggers.queue,
            oldest_message_alarm=Duration.seconds(OLDEST_MESSAGE_ALARM_SECONDS),
        )
        self._add_outputs()
        Tags.of(self).add("project", "nova-customization")
        Tags.of(self).add("pipeline", settings.pipeline_name)

    def _add_outputs(self) -> None:
        """What a user needs after `cdk deploy`: where to put data, what to start, where to look."""
        outputs = {
            "DataBucketName": (
                self.storage.data_bucket.bucket_name,
                "Upload datasets (datasets/) and run requests (requests/<pipeline>/) here",
            ),
            "ArtifactsBucketName": (
                self.storage.artifacts_bucket.bucket_name,
                "Run records and reports: runs/<run-id>/run.json and report.html",
            ),
            "StateMachineArn": (
                self.pipeline.state_machine.state_machine_arn,
                "Start a run here (Step Functions console: Start execution)",
            ),
            "NotificationTopicArn": (
                self.notifications.topic.topic_arn,
                "Run notifications (SUCCEEDED, FAILED, TIMED_OUT, ABORTED) and alarms",
            ),
        }
        for preset, function in self.graders.functions.items():
            key = "GraderFunction" + "".join(part.capitalize() for part in preset.replace("_", "-").split("-"))
            outputs[key] = (function.function_name, f"Reward Lambda of the {preset} grader preset")
        for output_id, (value, description) in outputs.items():
            CfnOutput(self, output_id, value=value, description=description)


_RETENTIONS = [
    (1, logs.RetentionDays.ONE_DAY),
    (7, logs.RetentionDays.ONE_WEEK),
    (14, logs.RetentionDays.TWO_WEEKS),
    (30, logs.RetentionDays.ONE_MONTH),
    (90, logs.RetentionDays.THREE_MONTHS),
    (180, logs.RetentionDays.SIX_MONTHS),
    (365, logs.RetentionDays.ONE_YEAR),
    (731, logs.RetentionDays.TWO_YEARS),
    (1827, logs.RetentionDays.FIVE_YEARS),
    (3653, logs.RetentionDays.TEN_YEARS),
]


def _retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch retention of at least ``days`` (CloudWatch accepts fixed values only)."""
    for limit, retention in _RETENTIONS:
        if limit >= days:
            return retention
    return _RETENTIONS[-1][1]
