"""Notify Lambda against moto: reads run.json, records runs that could not record themselves, publishes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.pipeline.naming import run_id_from_execution
from offline.lambda_context import FakeLambdaContext
from tests.unit.report.samples import SUCCEEDED_RUN, failed_run

REGION = "us-east-1"
EXECUTIONS = f"arn:aws:states:{REGION}:123456789012:execution:Pipeline:"


def run_id(name: str) -> str:
    """The run id of execution ``name``, as the pipeline derives it (the name and a hash of the ARN)."""
    return run_id_from_execution(name, EXECUTIONS + name)


CONTEXT = FakeLambdaContext(
    "notify", memory_limit_in_mb=256, aws_request_id="00000000-0000-0000-0000-000000000001", region=REGION
)


@dataclass
class World:
    s3: Any
    sqs: Any
    bucket: str
    queue_url: str
    state_machine_arn: str

    def put_run(self, run: dict) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=f"runs/{run['runId']}/run.json", Body=json.dumps(run).encode())

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def published(self) -> list[dict]:
        """Messages delivered to the topic (through an SQS subscription with raw delivery off)."""
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    def event(self, name: str, status: str, **detail: Any) -> dict:
        return {
            "version": "0",
            "id": "e1",
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": "123456789012",
            "time": "2025-06-01T16:40:00Z",
            "region": REGION,
            "resources": [EXECUTIONS + name],
            "detail": {
                "executionArn": EXECUTIONS + name,
                "stateMachineArn": self.state_machine_arn,
                "name": name,
                "status": status,
                "startDate": 1748771880000,
                "stopDate": 1748796000000,
                "input": json.dumps({"datasets": {"sft": "s3://d/sft.jsonl"}}),
                "output": None,
                **detail,
            },
        }


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        bucket = "nova-artifacts"
        s3.create_bucket(Bucket=bucket)
        topic_arn = sns.create_topic(Name="runs")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        monkeypatch.setenv("PIPELINE_NAME", "nova")
        monkeypatch.setenv("ARTIFACTS_BUCKET_NAME", bucket)
        monkeypatch.setenv("TOPIC_ARN", topic_arn)
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "notify")
        from lambdas.notify import handler, settings

        settings.settings.cache_clear()
        handler._client.cache_clear()
        yield World(s3, sqs, bucket, queue_url, f"arn:aws:states:{REGION}:123456789012:stateMachine:Pipeline")
        settings.settings.cache_clear()
        handler._client.cache_clear()


def _invoke(event: dict) -> dict:
    from lambdas.notify import handler

    return handler.lambda_handler(event, CONTEXT)


def test_a_succeeded_run_is_published_from_its_run_record(world: World) -> None:
    # Given the run record the pipeline wrote
    run = {**SUCCEEDED_RUN, "runId": run_id("exec-s")}
    world.put_run(run)
    # When the execution's SUCCEEDED event arrives
    result = _invoke(world.event("exec-s", "SUCCEEDED"))
    # Then one readable message is published with the metrics and the deployment
    [message] = world.published()
    assert message["Subject"] == f"[nova] Nova run {run['runId']}: SUCCEEDED, deployed"
    assert "exact_match" in message["Message"] and "custom-model-deployment/dep789" in message["Message"]
    assert f"s3://{world.bucket}/runs/{run['runId']}/report.html" in message["Message"]
    assert result["status"] == "SUCCEEDED"


def test_the_run_id_comes_from_the_output_when_the_pipeline_returns_one(world: World) -> None:
    run = {**failed_run(), "runId": "custom-run-id"}
    world.put_run(run)
    _invoke(world.event("exec-name", "FAILED", output=json.dumps({"runId": "custom-run-id"})))
    [message] = world.published()
    assert "custom-run-id" in message["Subject"] and "FAILED at rft" in message["Subject"]


def test_an_aborted_run_without_a_record_gets_one_and_is_notified(world: World) -> None:
    # Given an execution stopped by hand before it could record itself
    result = _invoke(world.event("request-x-1", "ABORTED"))
    # Then a run record and a report exist for it
    run = json.loads(world.read(f"runs/{run_id('request-x-1')}/run.json"))
    assert run["status"] == "ABORTED"
    assert run["input"] == {"datasets": {"sft": "s3://d/sft.jsonl"}}
    assert run["startedAt"] == "2025-06-01T09:58:00Z"
    assert "aborted" in run["error"]["cause"]
    assert b"<!doctype html>" in world.read(f"runs/{run_id('request-x-1')}/report.html")
    # And the notification says so
    [message] = world.published()
    assert message["Subject"] == f"[nova] Nova run {run_id('request-x-1')}: ABORTED"
    assert result["status"] == "ABORTED"


def test_a_timed_out_run_is_recorded_as_failed_with_the_reason(world: World) -> None:
    _invoke(world.event("request-y-1", "TIMED_OUT", error="States.Timeout"))
    run = json.loads(world.read(f"runs/{run_id('request-y-1')}/run.json"))
    assert run["status"] == "FAILED" and run["executionStatus"] == "TIMED_OUT"
    assert "timeout" in run["error"]["cause"] and "States.Timeout" in run["error"]["cause"]
    [message] = world.published()
    assert message["Subject"] == f"[nova] Nova run {run_id('request-y-1')}: TIMED OUT in unknown"


def test_an_existing_record_is_never_overwritten(world: World) -> None:
    world.put_run(failed_run())
    _invoke(world.event(failed_run()["runId"], "FAILED"))
    assert json.loads(world.read(f"runs/{failed_run()['runId']}/run.json")) == failed_run()


def test_a_record_the_schema_cannot_read_is_reported_from_the_event_and_kept(world: World) -> None:
    # Given a run.json no writer of this schema produces
    world.put_run({"runId": run_id("request-z-1"), "status": "RUNNING", "stages": {"sft": {"status": "SUCCEEDED"}}})
    # When the execution's end arrives
    _invoke(world.event("request-z-1", "ABORTED"))
    # Then the notification tells what Step Functions knows and why the record was not used
    [message] = world.published()
    assert message["Subject"].endswith("ABORTED")
    assert f"runs/{run_id('request-z-1')}/run.json is not a valid run record" in message["Message"]
    # And the record is left as it was
    assert json.loads(world.read(f"runs/{run_id('request-z-1')}/run.json"))["status"] == "RUNNING"


def test_stage_durations_and_bedrock_failures_become_metrics(world: World, capsys: pytest.CaptureFixture) -> None:
    run = {**failed_run(), "runId": run_id("request-d-1"), "error": {"stage": "Create custom model", "cause": "quota"}}
    world.put_run(run)
    _invoke(world.event("request-d-1", "FAILED"))
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {
        (m["Name"], tuple(sorted(dims)))
        for blob in emitted
        for directive in blob["_aws"]["CloudWatchMetrics"]
        for m in directive["Metrics"]
        for dims in directive["Dimensions"]
    }
    assert ("stage_duration", ("service", "stage")) in names
    assert ("bedrock_import_failures", ("service",)) in names
    sft = next(b for b in emitted if b.get("stage") == "sft")
    assert sft["stage_duration"] == [130 * 60] and sft["service"] == "notify"
    assert ("runs_notified", ("service",)) in names


def test_the_run_id_of_a_failed_run_is_found_in_the_execution_history(world: World) -> None:
    # Given a failed execution whose "Validate run" state resolved the run id (no execution output)
    from lambdas.notify.events import ExecutionStatusChange
    from lambdas.notify.service import resolve_run_id

    class History:
        def get_execution_history(self, **kwargs: Any) -> dict:
            assert kwargs["reverseOrder"] is False
            return {
                "events": [
                    {"type": "ExecutionStarted"},
                    {"type": "PassStateExited", "stateExitedEventDetails": {"name": "Start run", "output": "{}"}},
                    {
                        "type": "TaskStateExited",
                        "stateExitedEventDetails": {
                            "name": "Validate run",
                            "output": json.dumps({"plan": {"runId": "nova-20250601-abc"}}),
                        },
                    },
                ]
            }

    event = ExecutionStatusChange.model_validate(world.event("exec-1", "FAILED"))
    assert resolve_run_id(event, History()) == "nova-20250601-abc"
    succeeded = ExecutionStatusChange.model_validate(
        world.event("exec-2", "SUCCEEDED", output=json.dumps({"plan": {"runId": "from-output"}}))
    )
    assert resolve_run_id(succeeded, History()) == "from-output"


# -- lineage on every end ------------------------------------------------------------------------------


class _History:
    """An execution history, newest first, as GetExecutionHistory pages it."""

    def __init__(self, events: list[dict]) -> None:
        self.events = events

    def get_paginator(self, operation: str) -> Any:
        assert operation == "get_execution_history"
        history = self

        class Paginator:
            def paginate(self, **kwargs: Any) -> list[dict]:
                assert kwargs["reverseOrder"] is True
                return [{"events": history.events}]

        return Paginator()

    def get_execution_history(self, **kwargs: Any) -> dict:
        return {"events": list(reversed(self.events)) if kwargs.get("reverseOrder") is False else self.events}


class _TrainingJobs:
    """SageMaker as the notify function sees it: DescribeTrainingJob and StopTrainingJob."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses
        self.stopped: list[str] = []

    def describe_training_job(self, TrainingJobName: str) -> dict:
        return {"TrainingJobStatus": self.statuses[TrainingJobName]}

    def stop_training_job(self, TrainingJobName: str) -> None:
        self.stopped.append(TrainingJobName)


def _aborted_during_rft() -> _History:
    from tests.unit.pipeline import samples

    stages = samples.stages_after_training(rft=False).to_json()
    state = {
        "input": samples.run_input(),
        "execution": samples.EXECUTION,
        "plan": samples.plan().to_json(),
        "stages": stages,
        "model": {
            "arn": "arn:aws:bedrock:us-east-1:123456789012:custom-model/imported/x",
            "name": "nova-run-1",
            "checkpoint": samples.SFT_CHECKPOINT,
            "status": "Creating",
        },
    }
    scheduled = {
        "resourceType": "sagemaker",
        "resource": "createTrainingJob.sync",
        "parameters": json.dumps({"TrainingJobName": "nova-run-1-rft-a1"}),
    }
    done = {"resourceType": "sagemaker", "parameters": json.dumps({"TrainingJobName": "nova-run-1-sft-a1"})}
    return _History(
        [
            {"type": "ExecutionAborted"},
            {"type": "TaskScheduled", "taskScheduledEventDetails": scheduled},
            {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Run RFT training job"}},
            {
                "type": "TaskStateExited",
                "stateExitedEventDetails": {"name": "Prepare RFT job", "output": json.dumps(state)},
            },
            {"type": "TaskScheduled", "taskScheduledEventDetails": done},
        ]
    )


def _notify(world: World, event: dict, sfn: Any, sagemaker: Any, bedrock: Any = None) -> Any:
    from lambdas.notify.events import ExecutionStatusChange
    from lambdas.notify.service import NotifyConfig, notify_execution_end

    topic_arn = boto3.client("sns", region_name=REGION).list_topics()["Topics"][0]["TopicArn"]
    return notify_execution_end(
        ExecutionStatusChange.model_validate(event),
        config=NotifyConfig(pipeline="nova", artifacts_bucket=world.bucket, topic_arn=topic_arn),
        s3=world.s3,
        sns=boto3.client("sns", region_name=REGION),
        sfn=sfn,
        render_report=lambda run: "<html></html>",
        sagemaker=sagemaker,
        bedrock=bedrock,
    )


def test_an_aborted_run_keeps_its_checkpoints_and_model_and_its_running_job_is_stopped(world: World) -> None:
    from tests.unit.pipeline import samples

    # Given a run aborted during RFT, after SFT finished and (in this trail) with a model import in flight
    jobs = _TrainingJobs({"nova-run-1-rft-a1": "InProgress", "nova-run-1-sft-a1": "Completed"})
    bedrock = _Bedrock({})
    # When the notify function receives the end
    result = _notify(world, world.event("run-1", "ABORTED", input=None), _aborted_during_rft(), jobs, bedrock)
    # Then the still-running RFT job is stopped, and the notification says so; Bedrock is not called on this road
    assert jobs.stopped == ["nova-run-1-rft-a1"] and result.stopped_jobs == ["nova-run-1-rft-a1"]
    assert bedrock.calls == [] and result.stopped_customizations == [] and result.provisional == []
    (published,) = world.published()
    assert "were stopped: nova-run-1-rft-a1" in published["Message"]
    # ... and run.json keeps the plan, the SFT checkpoint and the in-flight import, recorded by the notifier
    run = json.loads(world.read("runs/run-1-0b9d6cbe/run.json"))
    assert run["status"] == "ABORTED" and run["recordedBy"] == "notify"
    assert run["plan"]["runId"] == "run-1-0b9d6cbe" and run["stages"]["sft"]["checkpoint"] == samples.SFT_CHECKPOINT
    assert run["model"]["status"] == "Creating" and run["error"]["stage"] == "Run RFT training job"
    assert run["input"] == samples.run_input()
    assert run["provisionalDeployments"] == []


def test_the_notification_is_published_even_when_the_record_cannot_be_written(world: World) -> None:
    # Given an artifacts bucket the notify function cannot use (here: it does not exist)
    world.s3.delete_bucket(Bucket=world.bucket)
    # When an aborted run ends
    result = _notify(world, world.event("run-1", "ABORTED"), _aborted_during_rft(), _TrainingJobs({}))
    # Then the notification is still published, and says the record is missing and why
    (published,) = world.published()
    missing = "The run record is missing: runs/run-1-0b9d6cbe/run.json could not be read (NoSuchBucket"
    assert missing in published["Message"]
    assert result.record_problem is not None


# -- the Bedrock road: customization jobs and provisional deployments ---------------------------------------------

BEDROCK_ARNS = f"arn:aws:bedrock:{REGION}:123456789012"
SFT_MODEL = f"{BEDROCK_ARNS}:custom-model/amazon.nova-2-lite-v1:0:256k/sft0123456789"
SFT_EVAL_DEPLOYMENT = f"{BEDROCK_ARNS}:custom-model-deployment/sfteval0001"
FINAL_EVAL_DEPLOYMENT = f"{BEDROCK_ARNS}:custom-model-deployment/finaleval01"


class _Bedrock:
    """Bedrock as the notify function sees it: customization jobs by name, deployments by ARN. A deployment absent
    from ``deployments`` is gone; ``refuse`` maps an ARN to the error code its deletion fails with."""

    def __init__(self, jobs: dict[str, str], deployments: set[str] | None = None, **refuse: str) -> None:
        self.jobs = jobs
        self.deployments = set(deployments or ())
        self.refuse = {SFT_EVAL_DEPLOYMENT: refuse["sft"]} if "sft" in refuse else {}
        self.calls: list[tuple[str, str]] = []

    def get_model_customization_job(self, jobIdentifier: str) -> dict:
        self.calls.append(("get_model_customization_job", jobIdentifier))
        if jobIdentifier not in self.jobs:
            raise _client_error("ResourceNotFoundException", "GetModelCustomizationJob")
        job = {"jobName": jobIdentifier, "status": self.jobs[jobIdentifier]}
        if job["status"] == "Completed":  # its output model: the SFT job's is the one the SFT stage records
            named = f"{BEDROCK_ARNS}:custom-model/amazon.nova-2-lite-v1:0:256k/{jobIdentifier}"
            job["outputModelArn"] = SFT_MODEL if jobIdentifier == "nova-run-1-sft-a1" else named
        return job

    def stop_model_customization_job(self, jobIdentifier: str) -> dict:
        self.calls.append(("stop_model_customization_job", jobIdentifier))
        self.jobs[jobIdentifier] = "Stopping"
        return {}

    def delete_custom_model_deployment(self, customModelDeploymentIdentifier: str) -> dict:
        arn = customModelDeploymentIdentifier
        self.calls.append(("delete_custom_model_deployment", arn))
        if arn in self.refuse:
            raise _client_error(self.refuse[arn], "DeleteCustomModelDeployment")
        if arn not in self.deployments:
            raise _client_error("ResourceNotFoundException", "DeleteCustomModelDeployment")
        self.deployments.discard(arn)
        return {}


def _client_error(code: str, operation: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": f"{operation} refused ({code})"}}, operation)


def _bedrock_state(stages: dict[str, dict], job: dict | None = None, **extra: Any) -> str:
    from tests.unit.pipeline import samples

    records: dict[str, Any] = {name: {"status": "PENDING"} for name in ("baselineEval", "sft", "sftEval", "rft")}
    records["finalEval"] = {"status": "PENDING"}
    records.update(stages)
    state = {
        "input": samples.run_input(platform="bedrock"),
        "execution": samples.EXECUTION,
        "plan": samples.plan(platform="bedrock").to_json(),
        "stages": records,
        **({"job": job} if job else {}),
        **extra,
    }
    return json.dumps(state)


def _customization_scheduled(job_name: str) -> dict:
    """Step Functions' TaskScheduled event of "Run <stage> customization job on Bedrock" (the resolved request)."""
    parameters = {"JobName": job_name, "ClientRequestToken": job_name, "CustomizationType": "REINFORCEMENT_FINE_TUNING"}
    details = {
        "resourceType": "bedrock",
        "resource": "createModelCustomizationJob.sync",
        "region": REGION,
        "parameters": json.dumps(parameters),
    }
    return {"type": "TaskScheduled", "taskScheduledEventDetails": details}


def _exited(name: str, output: str) -> dict:
    return {"type": "TaskStateExited", "stateExitedEventDetails": {"name": name, "output": output}}


SFT_DONE = {"status": "SUCCEEDED", "customModelArn": SFT_MODEL}


def _aborted_bedrock_run_mid_rft_and_sft_evaluation() -> _History:
    """A Bedrock-road run stopped while RFT's customization job ran beside the SFT evaluation, whose provisional
    deployment exists (its progress, ``job.evaluation``, names it) and whose next call had not returned."""
    progress = {"done": False, "waitSeconds": 60, "phase": "invoking", "deploymentArn": SFT_EVAL_DEPLOYMENT}
    evaluation = {"stage": "sftEval", "name": "nova-run-1-sfteval-a1", "attempt": 1, "evaluation": progress}
    rft_job = {"stage": "rft", "name": "nova-run-1-rft-a1", "attempt": 1}
    return _History(
        [
            {"type": "ExecutionAborted"},
            {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Evaluate SFT evaluation on Bedrock"}},
            {
                "type": "WaitStateExited",
                "stateExitedEventDetails": {
                    "name": "Wait for the SFT evaluation evaluation",
                    "output": _bedrock_state({"sft": SFT_DONE}, evaluation),
                },
            },
            _customization_scheduled("nova-run-1-rft-a1"),
            {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Run RFT customization job on Bedrock"}},
            _exited("Prepare RFT job", _bedrock_state({"sft": SFT_DONE}, rft_job)),
            _customization_scheduled("nova-run-1-sft-a1"),
        ]
    )


def test_an_aborted_bedrock_run_stops_its_customization_job_and_deletes_its_provisional_deployment(
    world: World,
) -> None:
    # Given a Bedrock-road run aborted mid-RFT and mid-SFT evaluation (SFT's job completed earlier)
    bedrock = _Bedrock({"nova-run-1-rft-a1": "InProgress", "nova-run-1-sft-a1": "Completed"}, {SFT_EVAL_DEPLOYMENT})
    history = _aborted_bedrock_run_mid_rft_and_sft_evaluation()
    # When the notify function receives the end
    result = _notify(world, world.event("run-1", "ABORTED"), history, _TrainingJobs({}), bedrock)
    # Then the RFT customization job is stopped (the completed SFT job is left alone) ...
    assert ("stop_model_customization_job", "nova-run-1-sft-a1") not in bedrock.calls
    assert bedrock.jobs["nova-run-1-rft-a1"] == "Stopping"
    assert result.stopped_customizations == ["nova-run-1-rft-a1"] and result.stopped_jobs == []
    # ... the SFT evaluation's provisional deployment is deleted, and the record and the notification say so
    assert bedrock.deployments == set()
    run = json.loads(world.read("runs/run-1-0b9d6cbe/run.json"))
    assert run["recordedBy"] == "notify" and run["plan"]["platform"] == "bedrock"
    assert run["provisionalDeployments"] == [
        {"stage": "sftEval", "arn": SFT_EVAL_DEPLOYMENT, "outcome": "deleted", "detail": None}
    ]
    (published,) = world.published()
    assert (
        "customization jobs still in progress when the run ended were stopped: nova-run-1-rft-a1"
        in (published["Message"])
    )
    assert (
        f"Provisional Bedrock deployments the run left were deleted: {SFT_EVAL_DEPLOYMENT}." in (published["Message"])
    )


def _aborted_bedrock_run_mid_final_evaluation(**extra: Any) -> _History:
    """Stopped during the final evaluation: the SFT evaluation recorded its deployment, the final evaluation's
    progress names its own."""
    progress = {"done": False, "waitSeconds": 120, "phase": "invoking", "deploymentArn": FINAL_EVAL_DEPLOYMENT}
    final = {"stage": "finalEval", "name": "nova-run-1-finaleval-a1", "attempt": 1, "evaluation": progress}
    stages = {
        "sft": SFT_DONE,
        "rft": {"status": "SUCCEEDED", "customModelArn": SFT_MODEL.replace("sft", "rft")},
        "sftEval": {"status": "SUCCEEDED", "deploymentArn": SFT_EVAL_DEPLOYMENT},
    }
    return _History(
        [
            {"type": "ExecutionTimedOut"},
            _exited("Evaluate final evaluation on Bedrock", _bedrock_state(stages, final, **extra)),
            _customization_scheduled("nova-run-1-rft-a1"),
        ]
    )


def test_a_deployment_already_gone_counts_as_deleted_and_one_that_cannot_be_deleted_is_reported(
    world: World,
) -> None:
    # Given a run that timed out during the final evaluation; the SFT evaluation's deployment cannot be deleted
    # and the final evaluation's is already gone
    bedrock = _Bedrock({"nova-run-1-rft-a1": "Completed"}, sft="AccessDeniedException")
    # When the notify function receives the end
    result = _notify(
        world, world.event("run-1", "TIMED_OUT"), _aborted_bedrock_run_mid_final_evaluation(), None, bedrock
    )
    # Then nothing is stopped, both deletions are tried, and each outcome is recorded
    assert result.stopped_customizations == []
    outcomes = {p.arn: (p.outcome, p.detail) for p in result.provisional}
    assert outcomes[FINAL_EVAL_DEPLOYMENT] == ("already deleted", None)
    outcome, detail = outcomes[SFT_EVAL_DEPLOYMENT]
    assert outcome == "not deleted" and "AccessDeniedException" in str(detail)
    # ... run.json lists the one left, for novactl cleanup, and the notification is still published, naming it
    run = json.loads(world.read("runs/run-1-0b9d6cbe/run.json"))
    assert {(p["arn"], p["outcome"]) for p in run["provisionalDeployments"]} == {
        (SFT_EVAL_DEPLOYMENT, "not deleted"),
        (FINAL_EVAL_DEPLOYMENT, "already deleted"),
    }
    (published,) = world.published()
    assert f"could not be deleted: {SFT_EVAL_DEPLOYMENT} (" in published["Message"]
    assert f"were deleted: {FINAL_EVAL_DEPLOYMENT}." in published["Message"]


def test_the_deployment_a_run_adopted_as_serving_is_kept(world: World) -> None:
    # Given a run that adopted the final evaluation's deployment (Active) and was stopped before recording itself
    serving = {"arn": FINAL_EVAL_DEPLOYMENT, "name": "nova-run-1", "modelArn": SFT_MODEL, "status": "Active"}
    history = _aborted_bedrock_run_mid_final_evaluation(deployment=serving)
    bedrock = _Bedrock({}, {SFT_EVAL_DEPLOYMENT, FINAL_EVAL_DEPLOYMENT})
    # When the notify function receives the end
    result = _notify(world, world.event("run-1", "ABORTED"), history, None, bedrock)
    # Then only the SFT evaluation's deployment is deleted; the serving one is recorded as serving
    assert bedrock.deployments == {FINAL_EVAL_DEPLOYMENT}
    assert {p.arn: p.outcome for p in result.provisional} == {
        SFT_EVAL_DEPLOYMENT: "deleted",
        FINAL_EVAL_DEPLOYMENT: "serving",
    }


def test_a_run_that_recorded_itself_keeps_its_own_cleanup(world: World) -> None:
    # Given a run whose "Record failed run" wrote run.json (and dealt with the provisional deployments)
    world.put_run({"schemaVersion": 1, "runId": "run-1-0b9d6cbe", "pipeline": "nova", "status": "FAILED"})
    bedrock = _Bedrock({"nova-run-1-rft-a1": "InProgress"}, {SFT_EVAL_DEPLOYMENT})
    # When the notify function receives the end of the failed execution
    result = _notify(
        world, world.event("run-1", "FAILED"), _aborted_bedrock_run_mid_rft_and_sft_evaluation(), None, bedrock
    )
    # Then a customization job still in progress is stopped, but no deployment is deleted
    assert result.stopped_customizations == ["nova-run-1-rft-a1"]
    assert result.provisional == [] and bedrock.deployments == {SFT_EVAL_DEPLOYMENT}


def test_a_customization_job_that_completed_as_the_run_stopped_has_its_unrecorded_model_named(world: World) -> None:
    # Given a run aborted mid-RFT whose RFT job completed before the stop reached it (its model exists, and no
    # stage records it), while the SFT job's model is recorded in the SFT stage
    history = _aborted_bedrock_run_mid_rft_and_sft_evaluation()
    bedrock = _Bedrock({"nova-run-1-rft-a1": "Completed", "nova-run-1-sft-a1": "Completed"}, {SFT_EVAL_DEPLOYMENT})
    # When the notify function receives the end
    result = _notify(world, world.event("run-1", "ABORTED"), history, _TrainingJobs({}), bedrock)
    # Then nothing is stopped, the RFT model is kept and named, and the recorded SFT model is not
    rft_model = f"{BEDROCK_ARNS}:custom-model/amazon.nova-2-lite-v1:0:256k/nova-run-1-rft-a1"
    assert result.stopped_customizations == [] and result.unrecorded_models == [rft_model]
    (published,) = world.published()
    assert f"nova-run-1-rft-a1 -> {rft_model}" in published["Message"]
    assert SFT_MODEL not in published["Message"].split("no stage of its record names")[1]
