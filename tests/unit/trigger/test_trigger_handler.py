"""Trigger Lambda against moto: exactly one execution per request version, rejections, waiting, templates."""

from __future__ import annotations

import json

from tests.unit.trigger.conftest import PIPELINE, VALID_REQUEST, TriggerWorld


def test_a_request_upload_starts_one_execution_with_the_request_as_input(world: TriggerWorld) -> None:
    # Given a valid request uploaded under requests/<pipeline>/
    version = world.upload(f"requests/{PIPELINE}/weekly.json", VALID_REQUEST)
    world.enqueue(world.object_created_event(f"requests/{PIPELINE}/weekly.json", version))
    # When the queue delivers the event
    response = world.deliver()
    # Then one execution runs the request unchanged, named after the request, and the message is consumed
    assert response["batchItemFailures"] == []
    [execution] = world.executions()
    assert execution["name"].startswith("request-weekly-")
    described = world.sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == VALID_REQUEST
    assert world.queued() == 0


def test_duplicate_events_for_one_object_version_start_exactly_one_execution(world: TriggerWorld) -> None:
    # Given the same S3 event delivered three times (at-least-once delivery), once after the run ended
    key = f"requests/{PIPELINE}/weekly.json"
    version = world.upload(key, VALID_REQUEST)
    event = world.object_created_event(key, version)
    world.enqueue(event)
    world.enqueue(event)
    # When all are processed, one while the run is active and one after it ended
    first = world.deliver()
    second = world.deliver()
    world.finish_running_executions()
    world.enqueue(event)
    third = world.deliver()
    # Then every message is acknowledged and only one execution exists
    assert first["batchItemFailures"] == second["batchItemFailures"] == third["batchItemFailures"] == []
    assert len(world.executions()) == 1
    assert world.queued() == 0


def test_a_duplicate_of_a_finished_run_is_acknowledged_at_once_even_during_another_run(world: TriggerWorld) -> None:
    # Given a request whose run has ended, and another request running now
    done, now = f"requests/{PIPELINE}/done.json", f"requests/{PIPELINE}/now.json"
    done_event = world.object_created_event(done, world.upload(done, VALID_REQUEST))
    world.enqueue(done_event)
    world.deliver()
    world.finish_running_executions()
    world.enqueue(world.object_created_event(now, world.upload(now, VALID_REQUEST)))
    world.deliver()
    # When the first request's event is delivered again
    world.enqueue(done_event)
    response = world.deliver()
    # Then it is acknowledged as a duplicate instead of waiting behind the active run
    assert response["batchItemFailures"] == [] and world.queued() == 0
    assert len(world.executions()) == 2 and len(world.executions("RUNNING")) == 1


def test_a_new_version_of_a_request_is_a_new_run(world: TriggerWorld) -> None:
    # Given a request processed, its run finished, and the same key uploaded again
    key = f"requests/{PIPELINE}/weekly.json"
    world.enqueue(world.object_created_event(key, world.upload(key, VALID_REQUEST)))
    world.deliver()
    world.finish_running_executions()
    world.enqueue(world.object_created_event(key, world.upload(key, {**VALID_REQUEST, "model": "nova-2-lite"})))
    # When the second version's event is processed
    world.deliver()
    # Then it started a second execution under a different name
    names = {e["name"] for e in world.executions()}
    assert len(names) == 2


def test_a_bad_request_is_moved_to_rejected_with_every_reason(world: TriggerWorld) -> None:
    # Given a request without datasets and with an unknown key, uploaded in a subfolder
    key = f"requests/{PIPELINE}/team-a/broken.json"
    version = world.upload(key, {"grader": "classification", "epochs": 3})
    world.enqueue(world.object_created_event(key, version))
    # When it is processed
    response = world.deliver()
    # Then no execution starts; the request moved to requests/rejected/ with an explanation beside it
    assert response["batchItemFailures"] == []
    assert world.executions() == []
    rejected = f"requests/rejected/{PIPELINE}/team-a/broken.json"
    assert world.keys("requests/") == [rejected, f"{rejected}.error.json"]
    assert world.read_json(rejected) == {"grader": "classification", "epochs": 3}
    error = world.read_json(f"{rejected}.error.json")
    assert "datasets: required" in error["errors"]
    assert any(e.startswith("epochs: unknown key") for e in error["errors"])
    assert error["source"] == {"bucket": world.bucket, "key": key, "versionId": version}


def test_a_request_that_is_not_json_is_rejected_not_dropped(world: TriggerWorld) -> None:
    key = f"requests/{PIPELINE}/notes.txt"
    world.enqueue(world.object_created_event(key, world.upload(key, b"datasets: s3://x")))
    world.deliver()
    error = world.read_json(f"requests/rejected/{PIPELINE}/notes.txt.error.json")
    assert error["errors"][0].startswith("not valid JSON")
    assert world.executions() == []


def test_requests_are_checked_with_the_pipelines_run_input_rules(world: TriggerWorld) -> None:
    # Given requests the pipeline's first state would refuse: a local path, a dataset in another bucket
    local = {**VALID_REQUEST, "datasets": {**VALID_REQUEST["datasets"], "sft": "/tmp/sft.jsonl"}}
    elsewhere = {**VALID_REQUEST, "datasets": {**VALID_REQUEST["datasets"], "rft": "s3://other/datasets/rft.jsonl"}}
    for name, request in (("local", local), ("elsewhere", elsewhere)):
        key = f"requests/{PIPELINE}/{name}.json"
        world.enqueue(world.object_created_event(key, world.upload(key, request)))
        world.deliver()
    # Then both are rejected with the pipeline's own messages, and nothing runs
    assert world.read_json(f"requests/rejected/{PIPELINE}/local.json.error.json")["errors"] == [
        "datasets.sft: expected an s3://bucket/key URI, got '/tmp/sft.jsonl'"
    ]
    [outside] = world.read_json(f"requests/rejected/{PIPELINE}/elsewhere.json.error.json")["errors"]
    assert "outside the project's data bucket" in outside
    assert world.executions() == []


def test_a_request_arriving_during_a_run_waits_in_the_queue_and_starts_after_it(world: TriggerWorld) -> None:
    # Given a run in progress
    first_key, second_key = f"requests/{PIPELINE}/first.json", f"requests/{PIPELINE}/second.json"
    world.enqueue(world.object_created_event(first_key, world.upload(first_key, VALID_REQUEST)))
    world.deliver()
    # When a second request arrives while the first is running
    world.enqueue(world.object_created_event(second_key, world.upload(second_key, VALID_REQUEST)))
    waiting = world.deliver()
    # Then it is reported as failed (stays queued), and nothing runs in parallel
    assert len(waiting["batchItemFailures"]) == 1
    assert world.queued() == 1
    assert len(world.executions("RUNNING")) == 1
    # And a retry while the run is still active keeps it queued
    assert len(world.deliver()["batchItemFailures"]) == 1
    # When the active run ends, the next delivery starts the waiting request
    world.finish_running_executions()
    started = world.deliver()
    assert started["batchItemFailures"] == []
    assert world.queued() == 0
    [running] = world.executions("RUNNING")
    assert running["name"].startswith("request-second-")


def test_an_invalid_request_is_rejected_even_while_a_run_is_active(world: TriggerWorld) -> None:
    ok, bad = f"requests/{PIPELINE}/ok.json", f"requests/{PIPELINE}/bad.json"
    world.enqueue(world.object_created_event(ok, world.upload(ok, VALID_REQUEST)))
    world.deliver()
    world.enqueue(world.object_created_event(bad, world.upload(bad, [1, 2])))
    assert world.deliver()["batchItemFailures"] == []
    assert f"requests/rejected/{PIPELINE}/bad.json.error.json" in world.keys("requests/rejected/")


def test_rejections_templates_and_data_files_never_start_runs(world: TriggerWorld) -> None:
    # Given objects the rule could deliver but that are not requests (including the trigger's own writes)
    keys = [
        f"requests/rejected/{PIPELINE}/old.json",
        f"requests/rejected/{PIPELINE}/old.json.error.json",
        f"requests/templates/{PIPELINE}.json",
        "requests/other-pipeline/run.json",
        f"datasets/{PIPELINE}/sft.jsonl",
    ]
    for key in keys:
        world.enqueue(world.object_created_event(key, world.upload(key, VALID_REQUEST)))
    # When each is processed
    for _ in keys:
        assert world.deliver()["batchItemFailures"] == []
    # Then nothing started, nothing moved
    assert world.executions() == []
    assert world.keys() == sorted(keys)


def test_events_of_another_bucket_are_ignored(world: TriggerWorld) -> None:
    key = f"requests/{PIPELINE}/weekly.json"
    world.enqueue(world.object_created_event(key, world.upload(key, VALID_REQUEST), bucket="someone-else"))
    world.deliver()
    assert world.executions() == []


def test_a_ready_marker_starts_the_stored_template_once(world: TriggerWorld) -> None:
    # Given a stored template and a _READY marker written after a dataset upload
    world.upload(f"requests/templates/{PIPELINE}.json", VALID_REQUEST)
    marker = f"datasets/{PIPELINE}/2025-06/_READY"
    event = world.object_created_event(marker, world.upload(marker, b""))
    # When the marker's event is delivered twice
    world.enqueue(event)
    world.enqueue(event)
    world.deliver()
    world.deliver()
    # Then the template runs once, under a name that says which folder became ready
    [execution] = world.executions()
    assert execution["name"].startswith("ready-2025-06-")
    assert json.loads(world.sfn.describe_execution(executionArn=execution["executionArn"])["input"]) == VALID_REQUEST


def test_a_ready_marker_without_a_template_explains_why_nothing_ran(world: TriggerWorld) -> None:
    marker = f"datasets/{PIPELINE}/_READY"
    world.enqueue(world.object_created_event(marker, world.upload(marker, b"")))
    assert world.deliver()["batchItemFailures"] == []
    assert world.executions() == []
    [error_key] = world.keys(f"requests/rejected/{PIPELINE}/")
    assert error_key.endswith(".error.json")
    error = world.read_json(error_key)
    assert error["errors"] == [f"no request template at s3://{world.bucket}/requests/templates/{PIPELINE}.json"]
    assert error["source"]["key"] == marker
    # The marker is data, not a request: it stays where it is
    assert marker in world.keys("datasets/")


def test_a_schedule_firing_starts_the_latest_template_once_per_firing(world: TriggerWorld) -> None:
    # Given a template updated after its first upload
    world.upload(f"requests/templates/{PIPELINE}.json", {**VALID_REQUEST, "grader": "numeric"})
    world.upload(f"requests/templates/{PIPELINE}.json", VALID_REQUEST)
    firing = {"source": "nova.retrain-schedule", "pipeline": PIPELINE, "scheduledTime": "2025-06-02T03:00:00Z"}
    # When the same firing is delivered twice (Scheduler retries) and another firing later
    world.enqueue(firing)
    world.enqueue(firing)
    world.deliver()
    world.deliver()
    world.finish_running_executions()
    world.enqueue({**firing, "scheduledTime": "2025-06-09T03:00:00Z"})
    world.deliver()
    # Then two executions ran the latest template
    executions = world.executions()
    assert len(executions) == 2
    for execution in executions:
        assert execution["name"].startswith(f"scheduled-{PIPELINE}-")
        described = world.sfn.describe_execution(executionArn=execution["executionArn"])
        assert json.loads(described["input"]) == VALID_REQUEST


def test_an_unrecognized_message_is_parked_in_the_dead_letter_queue(world: TriggerWorld) -> None:
    world.enqueue("this is not an event")
    world.enqueue({"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}})
    assert world.deliver()["batchItemFailures"] == []
    assert world.deliver()["batchItemFailures"] == []
    assert world.queued() == 0
    parked = world.sqs.receive_message(QueueUrl=world.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert [m["Body"] for m in parked][0] == "this is not an event"
    assert len(parked) == 2
    assert all(m["MessageAttributes"]["reason"]["StringValue"] for m in parked)


def test_an_oversized_request_is_rejected_without_reading_it_all(world: TriggerWorld) -> None:
    key = f"requests/{PIPELINE}/huge.json"
    world.enqueue(world.object_created_event(key, world.upload(key, b" " * (300 * 1024) + b"{}")))
    world.deliver()
    error = world.read_json(f"requests/rejected/{PIPELINE}/huge.json.error.json")
    assert "larger than 262144 bytes" in error["errors"][0]


def test_an_invalid_template_explains_why_the_schedule_did_not_run(world: TriggerWorld) -> None:
    world.upload(f"requests/templates/{PIPELINE}.json", {"datasets": VALID_REQUEST["datasets"], "stages": "all"})
    world.enqueue({"source": "nova.retrain-schedule", "pipeline": PIPELINE, "scheduledTime": "2025-06-02T03:00:00Z"})
    assert world.deliver()["batchItemFailures"] == []
    assert world.executions() == []
    [error_key] = world.keys(f"requests/rejected/{PIPELINE}/")
    assert error_key.startswith(f"requests/rejected/{PIPELINE}/scheduled-{PIPELINE}-")
    [problem] = world.read_json(error_key)["errors"]
    assert problem.startswith(f"requests/templates/{PIPELINE}.json: stages")
