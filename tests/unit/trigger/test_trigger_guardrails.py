"""The trigger never stalls and never drops silently; one run at a time even when listings are stale.

Against moto: permanent problems are moved to ``requests/rejected/`` and notified at once, transient errors
are retried by the queue and end in its dead-letter queue, the run lock decides what ListExecutions cannot.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from lambdas.trigger.messages import parse_message
from lambdas.trigger.service import RunInProgress, TriggerConfig, handle_message
from tests.unit.trigger.conftest import PIPELINE, REGION, VALID_REQUEST, TriggerWorld

REQUEST_KEY = f"requests/{PIPELINE}/weekly.json"
REJECTED_KEY = f"requests/rejected/{PIPELINE}/weekly.json"


def _deliver_request(world: TriggerWorld, body: object) -> dict:
    world.enqueue(world.object_created_event(REQUEST_KEY, world.upload(REQUEST_KEY, body)))
    return world.deliver()


def _assert_rejected_and_notified(world: TriggerWorld, response: dict, *fragments: str) -> dict:
    """The message is consumed, no run started, the error file explains, and the topic was told the same."""
    assert response["batchItemFailures"] == [] and world.queued() == 0
    assert world.executions() == []
    assert REQUEST_KEY not in world.keys(f"requests/{PIPELINE}/")
    error = world.read_json(f"{REJECTED_KEY}.error.json")
    text = " ".join(error["errors"])
    for fragment in fragments:
        assert fragment in text
    (published,) = world.published()
    assert published["Subject"] == f"[{PIPELINE}] run request rejected"
    assert f"{REJECTED_KEY}.error.json" in published["Message"]
    assert error["errors"][0][:80] in published["Message"]
    return error


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"grader": "classification", "budget": {"maxUsd": 1e309}}', "1e309 is too large"),
        (b'{"grader": "classification", "budget": {"maxUsd": NaN}}', "NaN is not a JSON number"),
        (b'{"grader": "classification", "budget": {"maxUsd": -Infinity}}', "-Infinity is not a JSON number"),
    ],
)
def test_a_request_with_non_strict_json_is_rejected_and_notified(
    world: TriggerWorld, body: bytes, fragment: str
) -> None:
    response = _deliver_request(world, body)
    _assert_rejected_and_notified(world, response, "not strict JSON", fragment)
    # the rejected request itself is kept beside its explanation
    assert world.s3.get_object(Bucket=world.bucket, Key=REJECTED_KEY)["Body"].read() == body


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDenied", 403),  # the role or the bucket policy, or a foreign KMS key S3 reports as access denied
        ("KMS.DisabledException", 400),  # the object's key is disabled
        ("InvalidRequest", 400),  # SSE-C: the object cannot be read without the customer's key
    ],
)
def test_a_request_the_trigger_cannot_read_is_rejected_and_notified_not_retried(
    world: TriggerWorld, code: str, status: int
) -> None:
    # Given reading (and so copying) the request fails with an error no retry can fix
    world.fail("s3", "GetObject", code, status)
    world.fail("s3", "CopyObject", code, status)
    # When its event is delivered
    response = _deliver_request(world, VALID_REQUEST)
    # Then it is not kept in the queue: the explanation says why and where the original version stays
    error = _assert_rejected_and_notified(world, response, code, "could not be copied here")
    assert error["source"]["versionId"] in " ".join(error["errors"])


def test_an_archived_request_is_rejected_and_notified(world: TriggerWorld) -> None:
    # Given a request stored in an archive storage class (moto answers GetObject with InvalidObjectState)
    version = world.s3.put_object(
        Bucket=world.bucket, Key=REQUEST_KEY, Body=json.dumps(VALID_REQUEST).encode(), StorageClass="GLACIER"
    )["VersionId"]
    world.enqueue(world.object_created_event(REQUEST_KEY, version))
    # When its event is delivered, then it is rejected at once with S3's reason
    response = world.deliver()
    _assert_rejected_and_notified(world, response, "InvalidObjectState")


@pytest.mark.parametrize("code", ["InvalidExecutionInput", "ValidationException"])
def test_an_input_step_functions_refuses_is_rejected_and_notified(world: TriggerWorld, code: str) -> None:
    world.fail("stepfunctions", "StartExecution", code)
    response = _deliver_request(world, VALID_REQUEST)
    _assert_rejected_and_notified(world, response, "Step Functions refused to start the run", code)


def test_a_transient_error_is_retried_then_dead_lettered_never_rejected(world: TriggerWorld) -> None:
    # Given a queue that dead-letters after 3 receives, and S3 failing with a server error on every read
    dlq_arn = world.sqs.get_queue_attributes(QueueUrl=world.dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})
    world.sqs.set_queue_attributes(QueueUrl=world.queue_url, Attributes={"RedrivePolicy": redrive})
    world.fail("s3", "GetObject", "InternalError", 500)
    world.enqueue(world.object_created_event(REQUEST_KEY, world.upload(REQUEST_KEY, VALID_REQUEST)))
    # When the queue delivers it until it stops
    attempts = [world.deliver() for _ in range(5)]
    # Then it was retried (reported as failed) 3 times, then moved to the dead-letter queue
    assert [len(a["batchItemFailures"]) for a in attempts] == [1, 1, 1, 0, 0]
    assert [a["delivered"] for a in attempts] == [1, 1, 1, 0, 0]
    (dead,) = world.dead_letters()
    assert json.loads(dead["Body"])["detail"]["object"]["key"] == REQUEST_KEY
    # ... and it was neither rejected nor started: the request is where it was uploaded, nobody was told yet
    assert world.keys("requests/rejected/") == [] and world.executions() == [] and world.published() == []
    assert REQUEST_KEY in world.keys(f"requests/{PIPELINE}/")


def test_a_transient_error_that_clears_starts_the_run(world: TriggerWorld) -> None:
    world.fail("s3", "GetObject", "SlowDown", 503, times=1)
    world.enqueue(world.object_created_event(REQUEST_KEY, world.upload(REQUEST_KEY, VALID_REQUEST)))
    first, second = world.deliver(), world.deliver()
    assert len(first["batchItemFailures"]) == 1 and second["batchItemFailures"] == []
    assert len(world.executions("RUNNING")) == 1 and world.queued() == 0


def test_a_stale_listing_cannot_start_a_second_run(world: TriggerWorld) -> None:
    # Given a run started from the console holding the run lock, and ListExecutions not listing it yet
    console = world.start_from_console("console-run")
    world.hold_lock(console)
    world.answer("stepfunctions", "ListExecutions", {"executions": []})
    # When a request arrives
    response = _deliver_request(world, VALID_REQUEST)
    # Then it waits in the queue: the lock, read consistently, says a run is active
    assert len(response["batchItemFailures"]) == 1 and world.queued() == 1
    assert [e["executionArn"] for e in world.executions()] == [console]
    # ... and starts once the console run has ended and released the lock
    world.finish_running_executions()
    world.dynamodb.delete_item(TableName=world.lock_table, Key={"pipeline": {"S": PIPELINE}})
    assert world.deliver()["batchItemFailures"] == []
    assert len(world.executions("RUNNING")) == 1


def test_a_lock_left_by_an_ended_execution_is_freed_and_the_request_starts(world: TriggerWorld) -> None:
    # Given the lock of a run that ended without its release (the notify function never ran)
    ended = world.start_from_console("ended-run")
    world.sfn.stop_execution(executionArn=ended)
    world.hold_lock(ended)
    # When a request arrives, then it starts, and the new run may take the lock
    response = _deliver_request(world, VALID_REQUEST)
    assert response["batchItemFailures"] == [] and len(world.executions("RUNNING")) == 1
    assert world.lock_holder() is None


def _handle_at_age(world: TriggerWorld, waited: timedelta, max_wait: timedelta) -> object:
    version = world.upload(REQUEST_KEY, VALID_REQUEST)
    message = parse_message(world.object_created_event(REQUEST_KEY, version))
    config = TriggerConfig(
        pipeline=PIPELINE,
        data_bucket=world.bucket,
        state_machine_arn=world.state_machine_arn,
        topic_arn=json.loads(json.dumps(world.sns.list_topics()["Topics"][0]))["TopicArn"],
        lock_table=world.lock_table,
        max_wait_seconds=max_wait.total_seconds(),
    )
    now = datetime(2026, 6, 1, tzinfo=UTC)
    return handle_message(
        message,
        config=config,
        s3=boto3.client("s3", region_name=REGION),
        sfn=boto3.client("stepfunctions", region_name=REGION),
        sns=world.sns,
        dynamodb=world.dynamodb,
        enqueued_at=now - waited,
        now=lambda: now,
    )


def test_a_request_that_waited_past_the_maximum_is_rejected_and_notified_not_left_to_expire(
    world: TriggerWorld,
) -> None:
    # Given a run in progress and a request that has waited longer than the trigger's maximum wait
    world.start_from_console("long-run")
    # When it is received again
    outcome = _handle_at_age(world, waited=timedelta(days=6), max_wait=timedelta(days=5))
    # Then it is rejected with the wait named, written and notified: it cannot expire in the queue unseen
    assert getattr(outcome, "action", None) == "rejected"
    error = world.read_json(f"{REJECTED_KEY}.error.json")
    assert "waited 144.0 h" in error["errors"][0] and "maximum wait of 120.0 h" in error["errors"][0]
    assert len(world.published()) == 1


def test_an_old_request_is_not_started_even_when_nothing_runs(world: TriggerWorld) -> None:
    outcome = _handle_at_age(world, waited=timedelta(days=6), max_wait=timedelta(days=5))
    assert getattr(outcome, "action", None) == "rejected" and world.executions() == []


def test_a_request_within_the_maximum_wait_keeps_waiting(world: TriggerWorld) -> None:
    world.start_from_console("long-run")
    with pytest.raises(RunInProgress):
        _handle_at_age(world, waited=timedelta(days=4), max_wait=timedelta(days=5))
    assert world.keys("requests/rejected/") == []
