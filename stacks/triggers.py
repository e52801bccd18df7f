"""Triggers: event-driven retraining that starts exactly one execution per request.

S3 ``Object Created`` events of the data bucket (run requests under
``requests/<pipeline>/`` and ``_READY`` markers under ``datasets/<pipeline>/``)
and, optionally, a retraining schedule go to one FIFO queue, consumed by the
trigger Lambda one message at a time:

- FIFO with a single message group (the pipeline name): messages are handled
  in order, one at a time, so two requests can never both see "no run active"
  and start in parallel on the same GPUs;
- a request that arrives during a run (the run lock is held, or an execution is
  running) is reported as a batch item failure and retried every
  ``VISIBILITY_TIMEOUT`` (15 min); so is a request that met a transient error;
- permanent problems (invalid or non-strict JSON, an object the trigger may not
  read, an input Step Functions refuses) are moved to ``requests/rejected/`` and
  published on the notifications topic at once, never retried;
- the Lambda names each execution from the object key and version, so a
  duplicate event starts nothing.

Nothing expires unseen. SQS deletes a message ``RETENTION`` after it was sent,
seen or not, and in a FIFO group the messages behind the head are not seen at
all. So the trigger never starts nor keeps waiting a message older than
``MAX_WAIT`` (it is rejected, written and notified instead). Take a message sent
at ``t``: every message ahead of it is older, so none of them starts a run after
``t + MAX_WAIT``; the last such run ends by ``t + MAX_WAIT + MAX_RUN_SECONDS``
(the state machine's timeout); within one visibility timeout the head moves on
and the older messages left ahead are rejected one invocation each. ``MAX_WAIT``
keeps ``RETENTION_MARGIN`` (a day) for that, so every message is received before
``t + RETENTION``: see :func:`longest_unseen_seconds`. A message whose errors
never clear is received at most ``MAX_RECEIVE_COUNT`` times (more than a waiting
request can be before ``MAX_WAIT``), then lands in the dead-letter queue, whose
alarm tells someone; an alarm on the age of the oldest message
(``OLDEST_MESSAGE_ALARM_SECONDS``) says the queue has stopped draining.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.common import env_names
from lambdas.trigger.layout import READY_MARKER, BucketLayout
from lambdas.trigger.messages import SCHEDULE_SOURCE
from stacks.executions import executions_arn, executions_finding
from stacks.grants import grant_key_use, grant_object_delete, grant_object_read, grant_object_write
from stacks.lambda_defaults import ProjectFunction
from stacks.nag import acknowledge, arn_of
from stacks.run_lock import RunLock
from stepfunctions.pipeline import MAX_RUN_SECONDS

TRIGGER_TIMEOUT = Duration.seconds(60)
_HOUR, _DAY = 3600, 24 * 3600
# Retry cadence of a waiting request; also > 6x the Lambda timeout, as SQS event sources require.
VISIBILITY_SECONDS = 15 * 60
# SQS's longest message retention (14 days).
RETENTION_SECONDS = 14 * _DAY
# Kept in hand for the older messages rejected ahead of a message, and for polling delays.
RETENTION_MARGIN_SECONDS = _DAY
# A message older than this is rejected (written and notified), never started or kept waiting.
MAX_WAIT_SECONDS = RETENTION_SECONDS - MAX_RUN_SECONDS - VISIBILITY_SECONDS - RETENTION_MARGIN_SECONDS
# More receives than a waiting request can have before MAX_WAIT: only errors that never clear reach it.
MAX_RECEIVE_COUNT = -(-MAX_WAIT_SECONDS // VISIBILITY_SECONDS) + 2
# A request waits at most one run (MAX_RUN_SECONDS) behind the active run; older means a backlog or a stuck head.
OLDEST_MESSAGE_ALARM_SECONDS = MAX_RUN_SECONDS + _HOUR


def longest_unseen_seconds(*, max_wait: float, max_run: float, visibility: float) -> float:
    """How long after it was sent a message may go unreceived, at most (module docstring), before the margin."""
    return max_wait + max_run + visibility


class Triggers(Construct):
    """Queue + DLQ, EventBridge rule, optional schedule and the trigger Lambda for one pipeline."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_name: str,
        state_machine: sfn.IStateMachine,
        data_bucket: s3.IBucket,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
        retrain_schedule: str | None = None,
        topic: sns.ITopic | None = None,
        run_lock: RunLock | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if MAX_WAIT_SECONDS <= MAX_RUN_SECONDS:
            raise ValueError(
                f"stepfunctions/pipeline.py: MAX_RUN_SECONDS ({MAX_RUN_SECONDS} s) leaves a request no time to wait "
                f"out one whole run within the queue's retention ({RETENTION_SECONDS} s): shorten it"
            )
        self.layout = BucketLayout(pipeline_name)
        self.dead_letter_queue, self.queue = self._build_queues()
        self.function = self._build_function(pipeline_name, state_machine, data_bucket, key, log_retention)
        self._connect(topic, run_lock)
        self.rule = self._build_rule(pipeline_name, data_bucket)
        self.schedule = self._build_schedule(pipeline_name, retrain_schedule) if retrain_schedule is not None else None

    def _build_queues(self) -> tuple[sqs.Queue, sqs.Queue]:
        dead_letters = sqs.Queue(
            self,
            "DeadLetterQueue",
            fifo=True,
            content_based_deduplication=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.seconds(RETENTION_SECONDS),
        )
        queue = sqs.Queue(
            self,
            "RequestQueue",
            fifo=True,
            # EventBridge and Scheduler send no deduplication id: identical bodies within 5 min are one message.
            content_based_deduplication=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(VISIBILITY_SECONDS),
            retention_period=Duration.seconds(RETENTION_SECONDS),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letters, max_receive_count=MAX_RECEIVE_COUNT),
        )
        return dead_letters, queue

    def _build_function(
        self,
        pipeline_name: str,
        state_machine: sfn.IStateMachine,
        data_bucket: s3.IBucket,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> ProjectFunction:
        function = ProjectFunction(
            self,
            "TriggerFunction",
            handler="lambdas.trigger.handler.lambda_handler",
            description="Starts one pipeline execution per run request, _READY marker or schedule firing",
            service_name="trigger",
            log_retention=log_retention,
            environment={
                env_names.PIPELINE_NAME: pipeline_name,
                env_names.DATA_BUCKET_NAME: data_bucket.bucket_name,
                env_names.STATE_MACHINE_ARN: state_machine.state_machine_arn,
                env_names.DEAD_LETTER_QUEUE_URL: self.dead_letter_queue.queue_url,
                env_names.MAX_WAIT_SECONDS: str(MAX_WAIT_SECONDS),
            },
            timeout=TRIGGER_TIMEOUT,
            memory_size_mb=256,
        )
        role = function.role
        layout = self.layout
        grant_object_read(role, data_bucket, layout.requests_prefix)
        grant_object_read(role, data_bucket, layout.template_key)
        grant_object_write(role, data_bucket, layout.rejected_prefix)
        grant_object_delete(role, data_bucket, layout.requests_prefix)
        grant_key_use(role, key)
        state_machine.grant_start_execution(role)
        iam.Grant.add_to_principal(
            grantee=role, actions=["states:ListExecutions"], resource_arns=[state_machine.state_machine_arn]
        )
        # A duplicate event is recognized by describing the execution its name would have (any status).
        iam.Grant.add_to_principal(
            grantee=role, actions=["states:DescribeExecution"], resource_arns=[executions_arn(state_machine)]
        )
        acknowledge(
            role,
            "IAM5",
            "Execution names are derived from request keys and versions; describing is read-only and limited to "
            "this pipeline's state machine",
            executions_finding(state_machine),
        )
        self.dead_letter_queue.grant_send_messages(role)
        function.function.add_event_source(
            event_sources.SqsEventSource(self.queue, batch_size=1, report_batch_item_failures=True)
        )
        bucket_arn = arn_of(data_bucket)
        acknowledge(
            role,
            "IAM5",
            "Object-key prefixes of the data bucket: run requests and the template are read, rejected "
            "requests are written and removed, under keys chosen by users",
            f"Resource::{bucket_arn}/{layout.requests_prefix}*",
            f"Resource::{bucket_arn}/{layout.template_key}*",
            f"Resource::{bucket_arn}/{layout.rejected_prefix}*",
        )
        return function

    def _connect(self, topic: sns.ITopic | None, run_lock: RunLock | None) -> None:
        """Rejections are published on the topic; the run lock is read (and a stale one cleared)."""
        function = self.function.function
        if topic is not None:
            function.add_environment(env_names.TOPIC_ARN, topic.topic_arn)
            # sns:Publish only: the key use the encrypted topic needs is granted with the data bucket's.
            iam.Grant.add_to_principal(
                grantee=self.function.role, actions=["sns:Publish"], resource_arns=[topic.topic_arn]
            )
        if run_lock is not None:
            function.add_environment(env_names.RUN_LOCK_TABLE_NAME, run_lock.table.table_name)
            run_lock.grant_release(self.function.role, read=True)

    def _build_rule(self, pipeline_name: str, data_bucket: s3.IBucket) -> events.Rule:
        layout = self.layout
        rule = events.Rule(
            self,
            "RequestUploaded",
            description=f"Run requests and dataset {READY_MARKER} markers of pipeline {pipeline_name}",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [data_bucket.bucket_name]},
                    # requests/<pipeline>/ excludes requests/rejected/ and requests/templates/ by construction.
                    "object": {
                        "key": events.Match.any_of(
                            events.Match.prefix(layout.requests_prefix),
                            events.Match.wildcard(f"{layout.datasets_prefix}*{READY_MARKER}"),
                        )
                    },
                },
            ),
        )
        rule.add_target(targets.SqsQueue(self.queue, message_group_id=pipeline_name))
        return rule

    def _build_schedule(self, pipeline_name: str, expression: str) -> scheduler.Schedule:
        return scheduler.Schedule(
            self,
            "RetrainSchedule",
            description=f"Retrains pipeline {pipeline_name} from {self.layout.template_key}",
            schedule=scheduler.ScheduleExpression.expression(expression),
            target=scheduler_targets.SqsSendMessage(
                self.queue,
                message_group_id=pipeline_name,
                input=scheduler.ScheduleTargetInput.from_object(
                    {
                        "source": SCHEDULE_SOURCE,
                        "pipeline": pipeline_name,
                        # One execution name per firing: Scheduler retries of a firing are duplicates.
                        "scheduledTime": scheduler.ContextAttribute.scheduled_time,
                    }
                ),
            ),
        )
