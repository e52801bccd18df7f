"""Approval before deployment: the token is kept, decisions are read strictly, problems never crash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.pipeline import approval

REGION = "us-east-1"
BUCKETS = approval.Buckets(data="data-bucket", artifacts="artifacts-bucket")
RUN = "my-run-032ab783"
AT = "2026-01-02T03:04:05Z"


class StepFunctions:
    """Records SendTaskSuccess calls; ``error`` makes it answer as Step Functions does for a stale token."""

    def __init__(self, error: str | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.error = error

    def send_task_success(self, **request: Any) -> dict[str, Any]:
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "SendTaskSuccess")
        self.sent.append(request)
        return {}


class Cloud:
    def __init__(self) -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        for bucket in (BUCKETS.data, BUCKETS.artifacts):
            self.s3.create_bucket(Bucket=bucket)
        self.topic = self.sns.create_topic(Name="runs")["TopicArn"]
        self.queue = self.sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]
        self.sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=queue_arn["QueueArn"])

    def messages(self) -> list[dict[str, str]]:
        received = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in received]

    def put(self, key: str, body: bytes | str, bucket: str = BUCKETS.data) -> None:
        self.s3.put_object(Bucket=bucket, Key=key, Body=body if isinstance(body, bytes) else body.encode())

    def read(self, key: str, bucket: str = BUCKETS.data) -> Any:
        return json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def exists(self, key: str, bucket: str) -> bool:
        return bool(self.s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"))

    def request(self) -> dict[str, Any]:
        event = {
            "taskToken": "token-1",
            "runId": RUN,
            "requestedAt": "2026-01-01T00:00:00Z",
            "timeoutSeconds": 7200,
            "gate": {"passed": True, "reasons": ["gain over baseline 0.26 >= 0.05"]},
        }
        return approval.request_approval(event, s3=self.s3, sns=self.sns, buckets=BUCKETS, topic_arn=self.topic)

    def apply(self, states: StepFunctions, key: str = approval.decision_key(RUN)) -> dict[str, Any]:
        return approval.apply_decision(
            BUCKETS.data,
            key,
            s3=self.s3,
            stepfunctions=states,
            sns=self.sns,
            buckets=BUCKETS,
            topic_arn=self.topic,
            at=AT,
        )


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield Cloud()


def test_the_request_keeps_the_token_and_says_how_to_decide_before_the_expiry(cloud: Cloud) -> None:
    cloud.request()
    stored = cloud.read(approval.token_key(RUN), bucket=BUCKETS.artifacts)
    assert stored["taskToken"] == "token-1" and stored["expiresAt"] == "2026-01-01T02:00:00Z"
    [message] = cloud.messages()
    assert message["Subject"] == f"Nova run {RUN}: approval needed"
    assert (
        f"novactl approve {RUN}" in message["Message"]
        and f"s3://data-bucket/approvals/{RUN}.json" in message["Message"]
    )
    assert "before 2026-01-01T02:00:00Z" in message["Message"]
    assert "  - gain over baseline 0.26 >= 0.05" in message["Message"]  # what the reviewer judges


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_decision_completes_the_waiting_task_with_its_reason(cloud: Cloud, decision: str) -> None:
    cloud.request()
    cloud.messages()
    cloud.put(approval.decision_key(RUN), json.dumps({"decision": decision, "reason": "checked the samples"}))
    states = StepFunctions()
    assert cloud.apply(states) == {"runId": RUN, "decision": decision, "reason": "checked the samples"}
    [sent] = states.sent
    assert sent["taskToken"] == "token-1"
    assert json.loads(sent["output"]) == {
        "decision": decision,
        "reason": "checked the samples",
        "file": f"s3://data-bucket/approvals/{RUN}.json",
        "decidedAt": AT,
    }
    assert not cloud.exists(approval.token_key(RUN), BUCKETS.artifacts)  # a second decision cannot apply
    [message] = cloud.messages()
    verb = {"approve": "approved", "reject": "rejected"}[decision]
    assert message["Subject"] == f"Nova run {RUN}: {verb}" and "checked the samples" in message["Message"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not JSON"),
        (b'{"decision": "approve", "reason": NaN}', "not JSON"),
        (b'["approve"]', "expected a JSON object"),
        (b'{"decision": "yes", "reason": "ok"}', "decision 'yes': expected one of approve, reject"),
        (b'{"decision": "approve"}', "reason: a non-empty string"),
        (b'{"decision": "approve", "reason": "ok", "by": "me"}', "unknown field 'by'"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_a_bad_decision_file_leaves_an_error_file_and_a_notification(cloud: Cloud, body: bytes, problem: str) -> None:
    cloud.request()
    cloud.messages()
    cloud.put(approval.decision_key(RUN), body)
    states = StepFunctions()
    result = cloud.apply(states)
    assert problem in result["error"] and states.sent == []
    error = cloud.read(approval.error_key(RUN))
    assert problem in error["error"] and f"approvals/{RUN}.json" in error["error"]
    [message] = cloud.messages()
    assert message["Subject"] == f"Nova run {RUN}: approval not applied" and problem in message["Message"]
    assert cloud.exists(approval.token_key(RUN), BUCKETS.artifacts)  # the run still waits


def test_a_decision_for_a_run_that_does_not_wait_is_reported(cloud: Cloud) -> None:
    cloud.put(approval.decision_key(RUN), b'{"decision": "approve", "reason": "ok"}')
    assert "is not waiting for approval" in cloud.apply(StepFunctions())["error"]
    cloud.request()
    result = cloud.apply(StepFunctions(error="TaskTimedOut"))
    assert "no longer waits for approval (TaskTimedOut)" in result["error"]
    assert cloud.exists(approval.error_key(RUN), BUCKETS.data)


def test_error_files_and_other_keys_are_ignored(cloud: Cloud) -> None:
    states = StepFunctions()
    for key in (approval.error_key(RUN), "approvals/nested/x.json", "approvals/Upper.json", "datasets/a.json"):
        assert "ignored" in cloud.apply(states, key=key)
    assert states.sent == [] and cloud.messages() == []
