"""Operations constructs: trigger rule, queue and DLQ, schedule, topic and its policy, dashboard, alarms.

Synthesized in a small stack around a stand-in state machine, with the cdk-nag
AwsSolutions plugin on (any unacknowledged finding fails the fixture).
"""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks
from moto.events.models import EventPattern
from moto.events.utils import EventMessageType

from lambdas.common import metric_names as names
from stacks.graders import Graders
from stacks.identity import Identity
from stacks.monitoring import Monitoring
from stacks.nag import acknowledge, arn_of
from stacks.notifications import Notifications
from stacks.run_lock import RunLock
from stacks.storage import Storage
from stacks.triggers import (
    MAX_RECEIVE_COUNT,
    OLDEST_MESSAGE_ALARM_SECONDS,
    TRIGGER_TIMEOUT,
    Triggers,
    longest_unseen_seconds,
)
from stepfunctions.pipeline import DEFINITION_FILE

DATA_BUCKET = "data-bucket"
STACK = "OperationsTest"
PIPELINE = "nova"
EMAIL = "ml-team@example.com"
SCHEDULE = "cron(0 3 ? * MON *)"
PRESETS = ["classification", "numeric"]


class OperationsTestStack(cdk.Stack):
    """The operations constructs around a stand-in state machine and two real grader functions."""

    def __init__(self, scope: cdk.App, *, schedule: str | None, email: str | None) -> None:
        super().__init__(scope, STACK, env=cdk.Environment(region="us-east-1"))
        retention = logs.RetentionDays.ONE_WEEK
        storage = Storage(self, "Storage", retain_data=False)
        identity = Identity(
            self,
            "Identity",
            artifacts_bucket=storage.artifacts_bucket,
            key=storage.key,
        )
        graders = Graders(
            self, "SageMakerGraders", invokers=[identity.sagemaker_role], log_retention=retention, presets=PRESETS
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StandInPipeline",
            definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(self, "Stand-in stage")),
            logs=sfn.LogOptions(
                destination=logs.LogGroup(self, "StandInLogs", retention=retention), level=sfn.LogLevel.ALL
            ),
            tracing_enabled=True,
        )
        acknowledge(self.state_machine.role, "IAM5", "Stand-in: X-Ray and log delivery actions", "Resource::*")
        acknowledge(
            identity.sagemaker_role,
            "IAM5",
            "Stand-in: CDK's grant_invoke covers the graders' versions and aliases",
            *(f"Resource::{arn_of(fn)}:*" for fn in graders.functions.values()),
        )
        run_lock = RunLock(self, "RunLock")
        self.notifications = Notifications(
            self,
            "Notifications",
            pipeline_name=PIPELINE,
            state_machine=self.state_machine,
            artifacts_bucket=storage.artifacts_bucket,
            key=storage.key,
            log_retention=retention,
            notification_email=email,
            run_lock=run_lock,
        )
        self.triggers = Triggers(
            self,
            "Triggers",
            pipeline_name=PIPELINE,
            state_machine=self.state_machine,
            data_bucket=storage.data_bucket,
            key=storage.key,
            log_retention=retention,
            retrain_schedule=schedule,
            topic=self.notifications.topic,
            run_lock=run_lock,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            pipeline_name=PIPELINE,
            state_machine=self.state_machine,
            topic=self.notifications.topic,
            grader_functions=graders.functions,
            dead_letter_queues={
                "trigger": self.triggers.dead_letter_queue,
                "notify": self.notifications.dead_letter_queue,
            },
            trigger_queue=self.triggers.queue,
            oldest_message_alarm=cdk.Duration.seconds(OLDEST_MESSAGE_ALARM_SECONDS),
        )


def synthesize_operations(outdir: Path, *, schedule: str | None = SCHEDULE, email: str | None = EMAIL) -> dict:
    """Synthesize the test stack through the AwsSolutions validation plugin; return its template."""
    from app import default_context

    app = cdk.App(context=default_context(), outdir=str(outdir))
    OperationsTestStack(app, schedule=schedule, email=email)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
    app.synth()
    return json.loads((outdir / f"{STACK}.template.json").read_text())


@pytest.fixture(scope="module")
def template_json(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return synthesize_operations(tmp_path_factory.mktemp("ops"))


@pytest.fixture(scope="module")
def template(template_json: dict) -> Template:
    return Template.from_json(template_json)


@pytest.fixture(scope="module")
def bare_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """Without the optional context: no schedule, no email subscription."""
    return Template.from_json(synthesize_operations(tmp_path_factory.mktemp("bare"), schedule=None, email=None))


def _resources(template_json: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in template_json["Resources"].items() if v["Type"] == resource_type}


def _logical_id(template_json: dict, resource_type: str, **properties: object) -> str:
    [found] = [
        k
        for k, v in _resources(template_json, resource_type).items()
        if all(v["Properties"].get(p) == value for p, value in properties.items())
    ]
    return found


def _request_rule(template_json: dict) -> dict:
    [rule] = [
        r["Properties"]
        for r in _resources(template_json, "AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"]["source"] == ["aws.s3"]
    ]
    return rule


def _s3_event(key: str, bucket: str = DATA_BUCKET) -> EventMessageType:
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key, "version-id": "v1"}},
    }


# Event-triggered retraining -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "matches"),
    [
        ("requests/nova/weekly.json", True),
        ("requests/nova/team-a/run.json", True),
        ("datasets/nova/_READY", True),
        ("datasets/nova/2025-06/_READY", True),
        # The trigger's own writes and the template never come back as events
        ("requests/rejected/nova/weekly.json", False),
        ("requests/rejected/nova/weekly.json.error.json", False),
        ("requests/templates/nova.json", False),
        # Data and other pipelines' requests do not reach the queue
        ("datasets/nova/sft.jsonl", False),
        ("requests/other/run.json", False),
        ("requests/weekly.json", False),
    ],
)
def test_the_request_rule_matches_requests_and_ready_markers_only(template_json: dict, key: str, matches: bool) -> None:
    pattern = json.loads(json.dumps(_request_rule(template_json)["EventPattern"]))
    pattern["detail"]["bucket"]["name"] = [DATA_BUCKET]
    assert EventPattern.load(json.dumps(pattern)).matches_event(_s3_event(key)) is matches


def test_the_request_rule_listens_to_the_data_bucket_only(template_json: dict) -> None:
    pattern = _request_rule(template_json)["EventPattern"]
    [bucket_ref] = pattern["detail"]["bucket"]["name"]
    buckets = _resources(template_json, "AWS::S3::Bucket")
    assert bucket_ref["Ref"] in buckets
    assert "Data" in bucket_ref["Ref"]
    assert pattern["detail-type"] == ["Object Created"]


def test_requests_go_through_a_fifo_queue_with_one_message_group(template_json: dict) -> None:
    [target] = _request_rule(template_json)["Targets"]
    queues = _resources(template_json, "AWS::SQS::Queue")
    queue = queues[target["Arn"]["Fn::GetAtt"][0]]["Properties"]
    assert target["SqsParameters"] == {"MessageGroupId": "nova"}
    assert queue["FifoQueue"] is True and queue["ContentBasedDeduplication"] is True
    assert queue["SqsManagedSseEnabled"] is True


def test_the_queue_has_a_dead_letter_queue_and_waits_long_enough_for_a_run(template_json: dict) -> None:
    queues = _resources(template_json, "AWS::SQS::Queue")
    [queue] = [q["Properties"] for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    redrive = queue["RedrivePolicy"]
    dlq = queues[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]
    assert dlq["FifoQueue"] is True and dlq["SqsManagedSseEnabled"] is True
    assert redrive["maxReceiveCount"] == MAX_RECEIVE_COUNT
    # Lambda's SQS event source wants the visibility timeout >= 6x the function timeout
    assert queue["VisibilityTimeout"] >= 6 * TRIGGER_TIMEOUT.to_seconds()
    # A waiting request is retried every visibility timeout: it can wait at least two days
    assert queue["VisibilityTimeout"] * redrive["maxReceiveCount"] >= 2 * 24 * 3600
    assert queue["MessageRetentionPeriod"] == dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


def _trigger_queue_and_wait(template_json: dict) -> tuple[dict, dict, float]:
    queues = _resources(template_json, "AWS::SQS::Queue")
    [queue] = [q["Properties"] for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    [trigger] = [
        f["Properties"]
        for f in _resources(template_json, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "lambdas.trigger.handler.lambda_handler"
    ]
    return queue, queues, float(trigger["Environment"]["Variables"]["MAX_WAIT_SECONDS"])


def test_no_request_can_expire_in_the_queue_unseen(template_json: dict) -> None:
    # The settings as deployed: the queue's retention and visibility timeout, the trigger's maximum wait, and the
    # state machine's timeout (the longest any run ahead of a request can hold the lock).
    queue, _, max_wait = _trigger_queue_and_wait(template_json)
    retention, visibility = queue["MessageRetentionPeriod"], queue["VisibilityTimeout"]
    run_timeout = json.loads(DEFINITION_FILE.read_text())["TimeoutSeconds"]
    # A request sent at t is received by t + max wait + one run + one visibility timeout (stacks/triggers.py):
    # no run starts for an older message after t + max wait. That is before SQS deletes it, with a day to spare
    # for rejecting, one invocation each, the older messages still ahead of it.
    unseen = longest_unseen_seconds(max_wait=max_wait, max_run=run_timeout, visibility=visibility)
    assert retention - unseen >= 24 * 3600
    # A request that only waits is rejected (and notified) by its age before its receives reach the dead-letter
    # queue: receives happen once per visibility timeout, so at most max wait / visibility + 1 of them.
    assert queue["RedrivePolicy"]["maxReceiveCount"] > max_wait / visibility + 1
    # ... and a request can wait out one whole run of the longest kind.
    assert max_wait > run_timeout


def test_a_queue_that_stops_draining_raises_an_alarm_before_requests_are_rejected_for_age(
    template_json: dict,
) -> None:
    queue, queues, max_wait = _trigger_queue_and_wait(template_json)
    [queue_id] = [k for k, q in queues.items() if q["Properties"] is queue]
    [alarm] = [a for a in _alarms(template_json) if a.get("MetricName") == "ApproximateAgeOfOldestMessage"]
    assert alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0] == queue_id
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    run_timeout = json.loads(DEFINITION_FILE.read_text())["TimeoutSeconds"]
    # not while a request waits behind one run, but before any request is rejected for its age
    assert run_timeout < alarm["Threshold"] < max_wait


def test_the_trigger_publishes_rejections_and_reads_and_frees_the_run_lock_only(template_json: dict) -> None:
    statements = _policy_of(template_json, "TriggerFunctionRole")
    by_action = {a: s for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert by_action["sns:Publish"]["Resource"] == {"Ref": _logical_id(template_json, "AWS::SNS::Topic")}
    [table] = _resources(template_json, "AWS::DynamoDB::Table")
    for action in ("dynamodb:GetItem", "dynamodb:DeleteItem"):
        assert by_action[action]["Resource"] == {"Fn::GetAtt": [table, "Arn"]}
    assert "dynamodb:PutItem" not in by_action
    notify = {
        a
        for s in _policy_of(template_json, "NotifyFunctionRole")
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {a for a in notify if a.startswith("dynamodb:")} == {"dynamodb:DeleteItem"}


def test_every_queue_denies_insecure_transport(template_json: dict) -> None:
    policies = _resources(template_json, "AWS::SQS::QueuePolicy").values()
    secured = {
        p["Properties"]["Queues"][0]["Ref"]
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    }
    assert secured == set(_resources(template_json, "AWS::SQS::Queue"))


def test_the_trigger_lambda_takes_one_message_at_a_time_and_reports_item_failures(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"BatchSize": 1, "FunctionResponseTypes": ["ReportBatchItemFailures"], "EventSourceArn": Match.any_value()},
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambdas.trigger.handler.lambda_handler",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "PIPELINE_NAME": "nova",
                        "STATE_MACHINE_ARN": Match.any_value(),
                        "DATA_BUCKET_NAME": Match.any_value(),
                    }
                )
            },
        },
    )


def _policy_of(template_json: dict, role_fragment: str) -> list[dict]:
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for k, p in _resources(template_json, "AWS::IAM::Policy").items()
        if role_fragment in k
    ]
    return policy


def _object_patterns(statement: dict) -> list[str]:
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return [r["Fn::Join"][1][1] for r in resources if isinstance(r, dict) and "Fn::Join" in r]


def test_the_trigger_lambda_touches_exactly_the_request_prefixes(template_json: dict) -> None:
    statements = _policy_of(template_json, "TriggerFunctionRole")
    by_action: dict[str, list[str]] = {}
    for s in statements:
        for action in [s["Action"]] if isinstance(s["Action"], str) else s["Action"]:
            by_action.setdefault(action, []).extend(_object_patterns(s))
    assert sorted(by_action["s3:GetObject"]) == ["/requests/nova/*", "/requests/templates/nova.json*"]
    assert by_action["s3:PutObject"] == ["/requests/rejected/nova/*"]
    assert by_action["s3:DeleteObject"] == ["/requests/nova/*"]
    assert not any("*" in a for a in by_action if a.startswith(("s3:", "states:", "sqs:")))
    assert {"states:StartExecution", "states:ListExecutions", "sqs:SendMessage"} <= set(by_action)
    state_machine = _logical_id(template_json, "AWS::StepFunctions::StateMachine")
    for s in statements:
        if s["Action"] in ("states:StartExecution", "states:ListExecutions"):
            assert s["Resource"] == {"Ref": state_machine}
    # A duplicate event is recognized by describing an execution of that state machine, read-only
    [describe] = [s for s in statements if s["Action"] == "states:DescribeExecution"]
    parts = describe["Resource"]["Fn::Join"][1]
    assert parts[-2:] == [{"Fn::GetAtt": [state_machine, "Name"]}, ":*"]
    assert ":execution:" in parts[-3] and ":states:" in "".join(p for p in parts if isinstance(p, str))


def test_the_retraining_schedule_sends_a_template_message_to_the_queue(template_json: dict, template: Template) -> None:
    [schedule] = _resources(template_json, "AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == SCHEDULE
    assert json.loads(props["Target"]["Input"]) == {
        "source": "nova.retrain-schedule",
        "pipeline": "nova",
        "scheduledTime": "<aws.scheduler.scheduled-time>",
    }
    assert props["Target"]["SqsParameters"] == {"MessageGroupId": "nova"}
    queue = props["Target"]["Arn"]["Fn::GetAtt"][0]
    # The scheduler's role may only send to that queue
    role = props["Target"]["RoleArn"]["Fn::GetAtt"][0]
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in _resources(template_json, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role}]
    ]
    assert policy == [{"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": {"Fn::GetAtt": [queue, "Arn"]}}]


def test_no_schedule_and_no_email_without_context(bare_template: Template) -> None:
    bare_template.resource_count_is("AWS::Scheduler::Schedule", 0)
    bare_template.resource_count_is("AWS::SNS::Subscription", 0)


# Notifications --------------------------------------------------------------------------------


def test_the_topic_is_encrypted_tls_only_and_emails_the_team(template_json: dict, template: Template) -> None:
    [topic_id] = _resources(template_json, "AWS::SNS::Topic")
    topic = template_json["Resources"][topic_id]["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert key_id in _resources(template_json, "AWS::KMS::Key")
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            },
        },
    )
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": EMAIL, "TopicArn": {"Ref": topic_id}}
    )


def test_cloudwatch_alarms_may_use_the_key_to_publish(template: Template) -> None:
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                            }
                        )
                    ]
                )
            }
        },
    )


def test_every_ended_execution_of_the_pipeline_reaches_the_notify_lambda(template_json: dict) -> None:
    [rule] = [
        r["Properties"]
        for r in _resources(template_json, "AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"]["source"] == ["aws.states"]
    ]
    state_machine = _logical_id(template_json, "AWS::StepFunctions::StateMachine")
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": state_machine}]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "SUCCEEDED", "TIMED_OUT"]
    [target] = rule["Targets"]
    function = template_json["Resources"][target["Arn"]["Fn::GetAtt"][0]]["Properties"]
    assert function["Handler"] == "lambdas.notify.handler.lambda_handler"
    # Undeliverable events and failed invocations are kept, not lost
    dlq = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    [invoke_config] = _resources(template_json, "AWS::Lambda::EventInvokeConfig").values()
    assert invoke_config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0] == dlq


def test_the_notify_lambda_reads_runs_publishes_and_reads_history_only(template_json: dict) -> None:
    statements = _policy_of(template_json, "NotifyFunctionRole")
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"s3:GetObject", "s3:PutObject", "sns:Publish", "states:GetExecutionHistory"} <= actions
    assert not any(a.endswith("*") for a in actions)
    # it stops training jobs an unfinished run left running: this pipeline's jobs only
    [jobs] = [s for s in statements if "sagemaker:StopTrainingJob" in s["Action"]]
    assert set(jobs["Action"]) == {"sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"}
    assert jobs["Resource"]["Fn::Join"][1][-1] == f":training-job/{PIPELINE}-*"
    s3_objects = {p for s in statements if "s3:GetObject" in s["Action"] for p in _object_patterns(s)}
    assert s3_objects == {"/runs/*"}


# Monitoring ---------------------------------------------------------------------------------


def _dashboard_body(template_json: dict) -> str:
    [dashboard] = _resources(template_json, "AWS::CloudWatch::Dashboard").values()
    return json.dumps(dashboard["Properties"]["DashboardBody"])


@pytest.mark.parametrize(
    "expected",
    [
        "Executions by status",
        "ExecutionsSucceeded",
        "ExecutionsFailed",
        "ExecutionsAborted",
        "ExecutionsTimedOut",
        "ExecutionTime",
        "stage_duration",
        "RewardMean",
        "RewardMin",
        "RewardMax",
        "MalformedItems",
        "GradingDuration",
        "bedrock_import_failures",
        "bedrock_deployment_failures",
        "ApproximateNumberOfMessagesVisible",
        "Throttles",
    ],
)
def test_the_dashboard_shows(template_json: dict, expected: str) -> None:
    assert expected in _dashboard_body(template_json)


def test_the_dashboard_shows_every_trigger_outcome_the_trigger_emits(template_json: dict) -> None:
    body = _dashboard_body(template_json)
    emitted = {*names.TRIGGER_OUTCOMES.values(), names.TRIGGER_WAITING, names.TRIGGER_UNRECOGNIZED}
    assert "trigger_ignored" in emitted
    for name in emitted:
        assert name in body, name


def test_the_dashboard_has_reward_widgets_for_every_grader(template_json: dict) -> None:
    body = _dashboard_body(template_json)
    for preset in PRESETS:
        assert f"Reward ({preset}): mean / min / max per batch" in body
        assert f"Malformed responses and judge failures ({preset})" in body


def _alarms(template_json: dict) -> list[dict]:
    return [a["Properties"] for a in _resources(template_json, "AWS::CloudWatch::Alarm").values()]


def test_every_alarm_notifies_the_topic(template_json: dict) -> None:
    [topic_id] = _resources(template_json, "AWS::SNS::Topic")
    alarms = _alarms(template_json)
    assert alarms
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], alarm["AlarmDescription"]


def test_failed_executions_raise_an_alarm(template_json: dict) -> None:
    [alarm] = [
        a
        for a in _alarms(template_json)
        if any(m.get("Expression") == "failed + timedOut" for m in a.get("Metrics", []))
    ]
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert names == {"ExecutionsFailed", "ExecutionsTimedOut"}
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_grader_errors_or_throttles_raise_an_alarm_per_grader(template_json: dict) -> None:
    functions = {
        k
        for k, f in _resources(template_json, "AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == "lambdas.reward.handler.lambda_handler"
    }
    watched = set()
    for alarm in _alarms(template_json):
        stats = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
        if {s["MetricName"] for s in stats} == {"Errors", "Throttles"}:
            watched |= {d["Value"]["Ref"] for s in stats for d in s["Dimensions"]}
            assert alarm["Threshold"] == 1
    assert watched == functions


@pytest.mark.parametrize("operator", ["LessThanLowerThreshold", "GreaterThanUpperThreshold"])
def test_reward_collapse_and_jump_raise_anomaly_alarms_per_grader(template_json: dict, operator: str) -> None:
    alarms = [a for a in _alarms(template_json) if a["ComparisonOperator"] == operator]
    assert len(alarms) == len(PRESETS)
    graders = set()
    for alarm in alarms:
        assert any(m.get("Expression", "").startswith("ANOMALY_DETECTION_BAND(") for m in alarm["Metrics"])
        [metric] = [m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m]
        assert metric["Metric"]["MetricName"] == "RewardMean" and metric["Metric"]["Namespace"] == "NovaCustomization"
        dims = {d["Name"]: d["Value"] for d in metric["Metric"]["Dimensions"]}
        assert dims["service"] == "reward"
        graders.add(dims["grader"])
    assert graders == set(PRESETS)


def test_a_non_empty_dead_letter_queue_raises_an_alarm(template_json: dict) -> None:
    queues = _resources(template_json, "AWS::SQS::Queue")
    dead_letter_queues = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    } | {
        t["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        for r in _resources(template_json, "AWS::Events::Rule").values()
        for t in r["Properties"]["Targets"]
        if "DeadLetterConfig" in t
    }
    watched = {
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in _alarms(template_json)
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and a["Threshold"] == 1
        and a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    }
    redriving = {k for k, q in queues.items() if "RedrivePolicy" in q["Properties"]}
    assert redriving, "no queue hands failed messages on"
    # every queue that does not redrive is where something else's failures land, and each one is watched
    assert dead_letter_queues == set(queues) - redriving
    assert watched == dead_letter_queues
