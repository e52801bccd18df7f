"""Run notifications: a KMS-encrypted SNS topic and the notify Lambda.

:class:`Notifications` creates the topic (TLS-only, optional email subscription), the
notify Lambda, which an EventBridge rule calls when an execution of the pipeline ends
(SUCCEEDED, FAILED, TIMED_OUT or ABORTED), and the dead-letter queue of that rule and
of the function's asynchronous invocations. The alarms of ``stacks/monitoring.py``
publish to the same topic.

Who may publish, and how:

- the notify Lambda, through its role's ``sns:Publish`` on the topic and use of the key (an
  identity policy in the topic's own account needs no allow in the topic policy);
- CloudWatch alarms, which publish as the service principal ``cloudwatch.amazonaws.com``. CDK's
  ``enforce_ssl`` gives the topic a policy holding only the TLS deny, which replaces SNS's default
  policy, so the topic policy must allow that principal ``sns:Publish`` (the statement is added by
  ``stacks/monitoring.py``, which knows the alarms). The topic is encrypted with a customer-managed
  key, and an AWS service that publishes to such a topic must itself be allowed to use the key, so
  the key policy also lets CloudWatch use it: ``kms:Decrypt`` and ``kms:GenerateDataKey*``, nothing
  else. Sources: the Amazon SNS Developer Guide, "Key management", section on compatibility between
  AWS service event sources and encrypted topics
  (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html), and the AWS re:Post
  Knowledge Center article on CloudWatch alarms that send no SNS notification
  (https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger), which gives the
  topic-policy statement and narrows it with ``aws:SourceArn`` on the alarm ARN. Both grants carry
  ``aws:SourceAccount`` and ``aws:SourceArn`` so that CloudWatch acts only for alarms of this account
  and region (the confused-deputy guard). The key statement matches every alarm of the account and
  region rather than the project's alarm ARNs: the alarms refer to the topic and the topic to the key,
  so a key policy naming the alarms would be a circular dependency.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.common import env_names, layout
from lambdas.common import metric_names as names
from lambdas.notify.events import TERMINAL_STATUSES
from stacks.executions import acknowledge_training_jobs, executions_arn, executions_finding, training_jobs_arn
from stacks.grants import (
    CUSTOM_MODEL_DEPLOYMENTS,
    grant_key_use,
    grant_object_read,
    grant_object_write,
    model_customization_jobs,
)
from stacks.lambda_defaults import ProjectFunction
from stacks.nag import acknowledge, arn_of, rendered_arn
from stacks.run_lock import RunLock

NOTIFY_TIMEOUT = Duration.seconds(60)
CLOUDWATCH = "cloudwatch.amazonaws.com"
# What publishing to a topic encrypted with a customer-managed key needs from the key.
PUBLISH_TO_ENCRYPTED_TOPIC = ["kms:Decrypt", "kms:GenerateDataKey*"]


def alarms_of_this_account(stack: Stack) -> str:
    """``arn:<partition>:cloudwatch:<region>:<account>:alarm:*``: any alarm of the stack's account and region."""
    return stack.format_arn(
        service="cloudwatch", resource="alarm", resource_name="*", arn_format=ArnFormat.COLON_RESOURCE_NAME
    )


def cloudwatch_alarms_key_statement(stack: Stack) -> iam.PolicyStatement:
    """Key-policy statement: CloudWatch may use the key to publish, for this account's alarms only."""
    return iam.PolicyStatement(
        sid="AllowCloudWatchAlarmsToPublishToEncryptedTopics",
        principals=[iam.ServicePrincipal(CLOUDWATCH)],
        actions=PUBLISH_TO_ENCRYPTED_TOPIC,
        resources=["*"],
        conditions={
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": alarms_of_this_account(stack)},
        },
    )


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
        run_lock: RunLock | None = None,
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
        if run_lock is not None:
            # The notify function releases the run lock of every execution that ends (aborts included).
            self.function.function.add_environment(env_names.RUN_LOCK_TABLE_NAME, run_lock.table.table_name)
            run_lock.grant_release(self.function.role)
        self.rule = self._build_rule(pipeline_name, state_machine)

    def _build_topic(self, pipeline_name: str, key: kms.IKey, email: str | None) -> sns.Topic:
        topic = sns.Topic(
            self,
            "RunNotifications",
            display_name=f"Nova pipeline {pipeline_name}",
            master_key=key,
            enforce_ssl=True,
        )
        key.add_to_resource_policy(cloudwatch_alarms_key_statement(Stack.of(self)))
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
                env_names.PIPELINE_NAME: pipeline_name,
                env_names.ARTIFACTS_BUCKET_NAME: artifacts_bucket.bucket_name,
                env_names.TOPIC_ARN: self.topic.topic_arn,
            },
            timeout=NOTIFY_TIMEOUT,
            memory_size_mb=256,
        )
        role = function.role
        # Reads run.json; writes run.json/report.html only for runs that could not record themselves.
        grant_object_read(role, artifacts_bucket, layout.RUNS_PREFIX)
        grant_object_write(role, artifacts_bucket, layout.RUNS_PREFIX)
        grant_key_use(role, key)
        # sns:Publish only (topic.grant_publish would add kms:GenerateDataKey* as well: grant_key_use covers it).
        iam.Grant.add_to_principal(grantee=role, actions=["sns:Publish"], resource_arns=[self.topic.topic_arn])
        executions = executions_arn(state_machine)
        iam.Grant.add_to_principal(grantee=role, actions=["states:GetExecutionHistory"], resource_arns=[executions])
        # A run that ends unfinished (aborted, timed out, failed) may leave a training job running: it is stopped.
        iam.Grant.add_to_principal(
            grantee=role,
            actions=["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"],
            resource_arns=[training_jobs_arn(pipeline_name)],
        )
        acknowledge_training_jobs(role, pipeline_name)
        # The Bedrock road: a customization job still in progress is stopped, and the provisional deployments of a
        # run that ended without its record (so no "Record" state deleted them) are deleted.
        jobs = model_customization_jobs(Stack.of(self))
        iam.Grant.add_to_principal(
            grantee=role,
            actions=["bedrock:GetModelCustomizationJob", "bedrock:StopModelCustomizationJob"],
            resource_arns=[jobs],
        )
        iam.Grant.add_to_principal(
            grantee=role, actions=["bedrock:DeleteCustomModelDeployment"], resource_arns=[CUSTOM_MODEL_DEPLOYMENTS]
        )
        acknowledge(
            role,
            "IAM5",
            "Bedrock customization jobs and custom-model deployments get service-generated ids; the notifier acts "
            "only on those the ended execution's history names",
            f"Resource::{rendered_arn(jobs)}",
            f"Resource::{rendered_arn(CUSTOM_MODEL_DEPLOYMENTS)}",
        )
        function.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
            retry_attempts=2,
            max_event_age=Duration.hours(6),
        )
        acknowledge(
            role,
            "IAM5",
            "Run records and reports are keyed by run id under runs/ of the artifacts bucket",
            f"Resource::{arn_of(artifacts_bucket)}/{layout.RUNS_PREFIX}*",
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
