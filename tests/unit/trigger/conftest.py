"""Moto-backed S3, SQS (FIFO queue + DLQ), Step Functions, SNS and the run-lock table for the trigger Lambda,
and a fake ESM. ``fail``/``answer`` make one client operation fail or answer as the real service can."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.common import run_lock
from offline.lambda_context import FakeLambdaContext

PIPELINE = "nova"
REGION = "us-east-1"
DATA_BUCKET = "nova-data"
VALID_REQUEST: dict[str, Any] = {
    "datasets": {
        "sft": f"s3://{DATA_BUCKET}/datasets/nova/sft.jsonl",
        "rft": f"s3://{DATA_BUCKET}/datasets/nova/rft.jsonl",
        "eval": f"s3://{DATA_BUCKET}/datasets/nova/eval.jsonl",
    },
    "grader": "classification",
}


CONTEXT = FakeLambdaContext("trigger", memory_limit_in_mb=256, region=REGION)


@dataclass
class TriggerWorld:
    """The data bucket, the pipeline's state machine and the trigger queue, as the Lambda sees them."""

    s3: Any
    sqs: Any
    sfn: Any
    bucket: str
    state_machine_arn: str
    queue_url: str
    dlq_url: str
    sns: Any = None
    dynamodb: Any = None
    topic_capture_url: str = ""
    lock_table: str = ""

    # Given helpers ---------------------------------------------------------
    def upload(self, key: str, body: object) -> str:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)["VersionId"]

    def object_created_event(self, key: str, version_id: str, *, bucket: str | None = None) -> dict:
        """What EventBridge delivers to the queue for an S3 ``Object Created`` event."""
        return {
            "version": "0",
            "id": f"event-{key}-{version_id}",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "123456789012",
            "time": "2025-06-01T12:00:00Z",
            "region": REGION,
            "resources": [f"arn:aws:s3:::{bucket or self.bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": bucket or self.bucket},
                "object": {"key": key, "size": 1, "etag": "e", "version-id": version_id, "sequencer": "1"},
                "request-id": "r",
                "requester": "123456789012",
                "reason": "PutObject",
            },
        }

    def enqueue(self, body: object) -> None:
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=body if isinstance(body, str) else json.dumps(body),
            MessageGroupId=PIPELINE,
            MessageDeduplicationId=str(self.sqs_counter()),
        )

    _counter: int = 0

    def sqs_counter(self) -> int:
        self._counter += 1
        return self._counter

    def hold_lock(self, execution_arn: str) -> None:
        """The run lock as an execution's first state leaves it."""
        item = {run_lock.KEY_ATTRIBUTE: {"S": PIPELINE}, run_lock.HOLDER_ATTRIBUTE: {"S": execution_arn}}
        self.dynamodb.put_item(TableName=self.lock_table, Item=item)

    def start_from_console(self, name: str) -> str:
        return str(self.sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name)["executionArn"])

    def fail(self, service: str, operation: str, code: str, status: int = 400, times: int | None = None) -> None:
        """Every call of ``operation`` by the trigger's ``service`` client (or the next ``times``) raises ``code``."""
        remaining = [times]

        def raise_error(**_: Any) -> None:
            if remaining[0] is not None:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            error = {
                "Error": {"Code": code, "Message": f"simulated {code}"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            }
            raise ClientError(error, operation)

        self._trigger_client(service).meta.events.register(f"before-call.*.{operation}", raise_error)

    def answer(self, service: str, operation: str, parsed: dict) -> None:
        """``operation`` answers ``parsed`` (e.g. a stale, empty ``ListExecutions`` page)."""

        def short_circuit(**_: Any) -> tuple[AWSResponse, dict]:
            return AWSResponse("https://simulated", 200, {}, None), parsed

        self._trigger_client(service).meta.events.register(f"before-call.*.{operation}", short_circuit)

    def _trigger_client(self, service: str) -> Any:
        from lambdas.trigger import handler

        return handler._client(service)

    # When helpers ----------------------------------------------------------
    def deliver(self) -> dict:
        """One poll of the Lambda event source mapping: receive one message, invoke, delete what succeeded."""
        from lambdas.trigger import handler

        received = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"], VisibilityTimeout=900
        ).get("Messages", [])
        if not received:
            return {"batchItemFailures": [], "delivered": 0}
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:trigger.fifo",
                    "awsRegion": REGION,
                }
                for m in received
            ]
        }
        response = handler.lambda_handler(event, CONTEXT)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for m in received:
            if m["MessageId"] in failed:
                # The visibility timeout expires: the message is back in the queue for the next poll.
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return {**response, "delivered": len(received)}

    # Then helpers ----------------------------------------------------------
    def executions(self, status: str | None = None) -> list[dict]:
        params = {"stateMachineArn": self.state_machine_arn}
        if status:
            params["statusFilter"] = status
        return self.sfn.list_executions(**params)["executions"]

    def queued(self) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", []))

    def read_json(self, key: str) -> dict:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def published(self) -> list[dict]:
        """Messages the trigger published on the notifications topic."""
        received = self.sqs.receive_message(QueueUrl=self.topic_capture_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in received]

    def dead_letters(self) -> list[dict]:
        return self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10).get("Messages", [])

    def lock_holder(self) -> str | None:
        return run_lock.lock_holder(self.dynamodb, self.lock_table, PIPELINE)

    def finish_running_executions(self) -> None:
        for execution in self.executions("RUNNING"):
            self.sfn.stop_execution(executionArn=execution["executionArn"])


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[TriggerWorld]:
    # mock_aws's default never runs executions: a started one stays RUNNING until stopped.
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        bucket = DATA_BUCKET
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        state_machine_arn = sfn.create_state_machine(
            name="Pipeline",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/pipeline",
        )["stateMachineArn"]
        dlq_url = sqs.create_queue(
            QueueName="trigger-dlq.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName="trigger.fifo",
            Attributes={
                "FifoQueue": "true",
                "VisibilityTimeout": "900",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "384"}),
            },
        )["QueueUrl"]
        sns = boto3.client("sns", region_name=REGION)
        topic_arn = sns.create_topic(Name="notifications")["TopicArn"]
        capture_url = sqs.create_queue(QueueName="notifications-capture")["QueueUrl"]
        capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=capture_arn)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        lock_table = "run-lock"
        dynamodb.create_table(
            TableName=lock_table,
            KeySchema=[{"AttributeName": run_lock.KEY_ATTRIBUTE, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": run_lock.KEY_ATTRIBUTE, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        monkeypatch.setenv("TOPIC_ARN", topic_arn)
        monkeypatch.setenv("RUN_LOCK_TABLE_NAME", lock_table)
        monkeypatch.setenv("PIPELINE_NAME", PIPELINE)
        monkeypatch.setenv("DATA_BUCKET_NAME", bucket)
        monkeypatch.setenv("STATE_MACHINE_ARN", state_machine_arn)
        monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dlq_url)
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "trigger")
        from lambdas.trigger import handler, settings

        settings.settings.cache_clear()
        handler._client.cache_clear()
        yield TriggerWorld(
            s3, sqs, sfn, bucket, state_machine_arn, queue_url, dlq_url, sns, dynamodb, capture_url, lock_table
        )
        settings.settings.cache_clear()
        handler._client.cache_clear()
