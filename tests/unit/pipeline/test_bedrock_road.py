"""Platform bedrock: the run input's checks, the plan, PrepareJob's customization request (valid for botocore's
CreateModelCustomizationJob), stopping a previous attempt, ResolveCheckpoint and the retry of Bedrock errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.pipeline import bedrock_jobs, jobs, naming, retry
from lambdas.pipeline.plan import RFT_FROM_BASE_NOTE
from lambdas.pipeline.schema import BedrockTrainingRequest, JobAttempt, Plan, StageRecords, StepError
from lambdas.pipeline.validation import RunInputError
from offline.lambda_context import FakeLambdaContext
from offline.shapes import request_problems
from tests.unit.pipeline import samples

JOB_ARN = (
    f"arn:aws:bedrock:us-east-1:{samples.ACCOUNT}:model-customization-job/amazon.nova-2-lite-v1:0:256k/abcd1234efgh"
)
MODEL_ARN = f"arn:aws:bedrock:us-east-1:{samples.ACCOUNT}:custom-model/amazon.nova-2-lite-v1:0:256k/0123456789ab"
ROLE_ARN = f"arn:aws:iam::{samples.ACCOUNT}:role/BedrockCustomization"
CONTEXT = FakeLambdaContext("pipeline-test", aws_request_id="request-1")


def _problems(**changes: Any) -> list[str]:
    with pytest.raises(RunInputError) as raised:
        samples.plan(platform="bedrock", **changes)
    return raised.value.problems


def _bedrock_plan(**changes: Any) -> Plan:
    return samples.plan(platform="bedrock", **changes)


def _stages(**records: dict[str, Any]) -> StageRecords:
    base: dict[str, Any] = {name: {"status": "PENDING"} for name in naming.STAGES}
    return StageRecords.model_validate({**base, **records})


# -- the run input -----------------------------------------------------------------------------------


def test_sagemaker_only_fields_are_refused_by_name() -> None:
    found = _problems(
        sft={"instanceType": "ml.p5.48xlarge", "instanceCount": 4},
        rft={"instanceCount": 2},
        evaluation={"instanceType": "ml.g5.12xlarge"},
    )
    assert found == [
        "sft.instanceType: not used on platform bedrock (Bedrock chooses the hardware)",
        "sft.instanceCount: not used on platform bedrock (Bedrock chooses the hardware)",
        "rft.instanceCount: not used on platform bedrock (Bedrock chooses the hardware)",
        "evaluation.instanceType: not used on platform bedrock (Bedrock chooses the hardware)",
    ]


def test_overrides_are_checked_against_bedrocks_names_and_ranges() -> None:
    found = _problems(sft={"overrides": {"max_steps": 100, "lr": 1e-3}}, rft={"overrides": {"number_generation": 32}})
    assert len(found) == 3
    assert found[0].startswith("sft.overrides.max_steps: unknown override for nova-2-lite sft on Bedrock (allowed:")
    assert found[1].startswith("sft.overrides.lr: 0.001 is above the maximum 0.0001")
    assert found[2].startswith("rft.overrides.number_generation: 32 is above the maximum 16")
    assert "trainingSamplePerPrompt" in found[2]


def test_methods_bedrock_does_not_offer_for_the_model_are_refused() -> None:
    found = _problems(model="nova-pro")
    assert found == [
        "stages.rft: Bedrock does not offer RFT for nova-pro on platform bedrock (models: nova-2-lite); use "
        "platform sagemaker or another model"
    ]
    # without RFT, Nova Pro fine-tunes on Bedrock
    plan = _bedrock_plan(model="nova-pro", stages={"rft": False})
    assert plan.bedrock is not None and plan.bedrock.baseModelIdentifier == "amazon.nova-pro-v1:0:300k"
    assert plan.bedrock.inferenceModelId == "amazon.nova-pro-v1:0"


def test_resume_from_is_refused_on_bedrock() -> None:
    found = _problems(resumeFrom=samples.resume("rft", samples.SFT_CHECKPOINT))
    assert any(p.startswith("resumeFrom: not available on platform bedrock") for p in found), found


def test_a_resume_refused_on_bedrock_is_not_also_asked_about_its_account(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an execution ARN that names no account (as offline checks have), then the refusal is the only word
    # about resumeFrom
    monkeypatch.setattr(samples, "EXECUTION", {**samples.EXECUTION, "id": "arn:aws:states:::execution:Pipeline:run-1"})
    found = _problems(resumeFrom=samples.resume("rft", samples.SFT_CHECKPOINT))
    assert [p.split(":")[0] for p in found if p.startswith("resumeFrom")] == ["resumeFrom"], found


def test_nothing_to_train_names_what_bedrock_can_train() -> None:
    assert _problems(stages={"sft": False, "rft": False}) == [
        "stages: nothing to train; enable stages.sft or stages.rft"
    ]


def test_an_unknown_platform_is_named() -> None:
    with pytest.raises(RunInputError) as raised:
        samples.plan(platform="vertex")
    assert raised.value.problems[0].startswith("platform: Input should be 'sagemaker' or 'bedrock'")


# -- the plan ----------------------------------------------------------------------------------------


def test_the_plan_names_the_road_the_base_model_and_that_rft_starts_from_the_base_model() -> None:
    plan = _bedrock_plan(sft={"overrides": {"lr": 5e-5}, "maxRuntimeHours": 6})
    assert plan.platform == "bedrock"
    assert plan.bedrock is not None
    assert plan.bedrock.model_dump() == {
        "baseModelIdentifier": "amazon.nova-2-lite-v1:0:256k",
        "inferenceModelId": "us.amazon.nova-2-lite-v1:0",
        "rftStartsFrom": "base",
    }
    assert plan.notes == [RFT_FROM_BASE_NOTE]
    sft = plan.jobs.of("sft")
    assert (sft.instanceType, sft.instanceCount, sft.maxRuntimeSeconds) == (None, None, 6 * 3600)
    assert sft.overrides == {"lr": 5e-5}
    with pytest.raises(ValueError, match="no instances"):
        sft.instances()


def test_rft_without_sft_is_valid_on_bedrock_and_needs_no_note() -> None:
    plan = _bedrock_plan(stages={"sft": False})
    assert plan.enabled.rft and not plan.enabled.sft and plan.notes == []


def test_the_sagemaker_road_is_unchanged() -> None:
    plan = samples.plan()
    assert plan.platform == "sagemaker" and plan.bedrock is None and plan.notes == []
    assert plan.jobs.of("sft").instances() == ("ml.p5.48xlarge", 4)


# -- PrepareJob --------------------------------------------------------------------------------------


def _as_api_request(job: JobAttempt) -> dict[str, Any]:
    """The CreateModelCustomizationJob request the .sync Task makes of this attempt (API member names)."""
    request = job.request
    assert isinstance(request, BedrockTrainingRequest)
    api: dict[str, Any] = {
        "jobName": job.name,
        "customModelName": request.customModelName,
        "roleArn": ROLE_ARN,
        "baseModelIdentifier": request.baseModelIdentifier,
        "customizationType": request.customizationType,
        "customModelKmsKeyId": samples.KMS_KEY_ARN,
        "trainingDataConfig": {"s3Uri": request.trainingDataUri},
        "outputDataConfig": {"s3Uri": request.outputUri},
        "clientRequestToken": job.name,
    }
    if request.hyperParameters is not None:
        api["hyperParameters"] = request.hyperParameters
    if request.rftHyperParameters is not None:
        api["customizationConfig"] = {
            "rftConfig": {
                "graderConfig": {"lambdaGrader": {"lambdaArn": request.graderArn}},
                "hyperParameters": request.rftHyperParameters,
            }
        }
    return api


def _prepare(stage: str, plan: Plan, previous: JobAttempt | None = None, bedrock: Any = None) -> JobAttempt:
    return jobs.prepare_job(
        stage=stage,  # type: ignore[arg-type]
        plan=plan,
        stages=_stages(),
        previous=previous or JobAttempt(stage=stage, startedAt="t0"),  # type: ignore[arg-type]
        region="us-east-1",
        s3=None,
        bedrock=bedrock,
    )


@pytest.mark.parametrize("stage", ["sft", "rft"])
def test_the_customization_request_is_valid_for_botocore(stage: str) -> None:
    plan = _bedrock_plan(rft={"overrides": {"global_batch_size": 64}})
    job = _prepare(stage, plan)
    assert request_problems("bedrock", "CreateModelCustomizationJob", _as_api_request(job)) == []
    request = job.request
    assert isinstance(request, BedrockTrainingRequest)
    assert job.name == f"nova-run-1-0b9d6cbe-{stage}-a1" and job.attempt == 1 and job.startedAt == "t0"
    assert request.baseModelIdentifier == "amazon.nova-2-lite-v1:0:256k"
    assert request.trainingDataUri == plan.datasets.require(stage).stagedUri
    assert request.outputUri == f"s3://{samples.ARTIFACTS_BUCKET}/runs/run-1-0b9d6cbe/jobs/{stage}/{job.name}/"
    # the Task times the job out at the stage's runtime (what preflight prices an hourly-billed job up to)
    assert request.maxRuntimeSeconds == plan.jobs.of(stage).maxRuntimeSeconds
    if stage == "sft":
        assert request.customizationType == "FINE_TUNING" and request.rftHyperParameters is None
        assert request.hyperParameters == {"epochCount": "2", "learningRate": "1e-05", "learningRateWarmupSteps": "10"}
    else:
        assert request.customizationType == "REINFORCEMENT_FINE_TUNING" and request.hyperParameters is None
        assert request.graderArn == samples.GRADER_ARN
        assert request.rftHyperParameters is not None and request.rftHyperParameters["batchSize"] == 64


def test_a_wrong_request_is_caught_by_the_botocore_check() -> None:
    job = _prepare("sft", _bedrock_plan())
    api = _as_api_request(job)
    api["customModelName"] = "bad name with spaces"
    api["customizationType"] = "SUPERVISED"
    found = request_problems("bedrock", "CreateModelCustomizationJob", api)
    assert any("customModelName" in p for p in found) and any("customizationType" in p for p in found)


def test_names_are_fresh_per_attempt_and_fit_bedrocks_limits() -> None:
    plan = _bedrock_plan().model_copy(update={"pipelineName": "a-very-long-pipeline-name", "runId": "r" * 70})
    first = _prepare("rft", plan)
    failed = first.model_copy(update={"lastError": StepError(Error="Bedrock.ThrottlingException")})
    second = _prepare("rft", plan, previous=failed, bedrock=_NoJob())
    assert first.name != second.name and second.attempt == 2
    for job in (first, second):
        assert request_problems("bedrock", "CreateModelCustomizationJob", _as_api_request(job)) == []
    assert isinstance(first.request, BedrockTrainingRequest) and isinstance(second.request, BedrockTrainingRequest)
    assert first.request.customModelName != second.request.customModelName
    assert second.errors[0].error == "Bedrock.ThrottlingException" and second.errors[0].job == first.name


class _NoJob:
    """A Bedrock client that knows no customization job."""

    def get_model_customization_job(self, **kwargs: Any) -> dict:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "not found"}}, "Get")


def _stubbed() -> tuple[Any, Stubber]:
    client = boto3.client("bedrock", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def _described(status: str, **more: Any) -> dict[str, Any]:
    return {
        "jobArn": JOB_ARN,
        "jobName": "nova-run-1-0b9d6cbe-sft-a1",
        "outputModelName": "nova-run-1-0b9d6cbe-sft-a1",
        "roleArn": ROLE_ARN,
        "status": status,
        "creationTime": dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC),
        "baseModelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-2-lite-v1:0:256k",
        "trainingDataConfig": {"s3Uri": f"s3://{samples.ARTIFACTS_BUCKET}/runs/x/sft.jsonl"},
        "validationDataConfig": {"validators": []},
        "outputDataConfig": {"s3Uri": f"s3://{samples.ARTIFACTS_BUCKET}/runs/x/jobs/sft/"},
        **more,
    }


def test_a_new_attempt_stops_the_previous_customization_job_still_running() -> None:
    client, stub = _stubbed()
    name = "nova-run-1-0b9d6cbe-sft-a1"
    stub.add_response("get_model_customization_job", _described("InProgress"), {"jobIdentifier": name})
    stub.add_response("stop_model_customization_job", {}, {"jobIdentifier": name})
    stub.add_response("get_model_customization_job", _described("Failed"), {"jobIdentifier": name})
    with stub:
        previous = JobAttempt(stage="sft", name=name, attempt=1, startedAt="t0")
        assert _prepare("sft", _bedrock_plan(), previous=previous, bedrock=client).attempt == 2
        assert jobs.stop_previous_customization(client, name) == "Failed"  # ended: not stopped again
    stub.assert_no_pending_responses()


# -- ResolveCheckpoint -------------------------------------------------------------------------------


def test_a_completed_job_gives_its_arn_and_output_model() -> None:
    client, stub = _stubbed()
    ended = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)
    response = _described("Completed", outputModelArn=MODEL_ARN, endTime=ended)
    stub.add_response("get_model_customization_job", response, {"jobIdentifier": "nova-run-1-0b9d6cbe-sft-a1"})
    with stub:
        finished = bedrock_jobs.finished_job(client, "nova-run-1-0b9d6cbe-sft-a1")
    assert finished == bedrock_jobs.FinishedJob(JOB_ARN, MODEL_ARN, ended.isoformat())


@pytest.mark.parametrize("status", ["Failed", "Stopped", "InProgress"])
def test_a_job_that_did_not_complete_raises_with_bedrocks_failure_message(status: str) -> None:
    client, stub = _stubbed()
    message = "Training data row 12 is not valid JSON"
    stub.add_response("get_model_customization_job", _described(status, failureMessage=message))
    with stub, pytest.raises(bedrock_jobs.CustomizationJobError) as raised:
        bedrock_jobs.finished_job(client, "nova-run-1-0b9d6cbe-sft-a1")
    assert f"ended {status}: {message}" in str(raised.value)


def test_the_resolve_handler_records_the_custom_model(monkeypatch: pytest.MonkeyPatch, pipeline_env: Any) -> None:
    from lambdas.pipeline import handlers

    plan = _bedrock_plan()
    job = _prepare("sft", plan)
    client, stub = _stubbed()
    stub.add_response("get_model_customization_job", _described("Completed", outputModelArn=MODEL_ARN))
    monkeypatch.setattr(handlers, "bedrock_client", lambda: client)
    event = {"stage": "sft", "job": job.to_json(), "stages": _stages().to_json(), "endedAt": "t1"}
    with stub:
        stages = StageRecords.model_validate(handlers.resolve_checkpoint(event, CONTEXT))
    record = stages.sft
    assert (record.status, record.jobName, record.jobArn, record.customModelArn) == (
        "SUCCEEDED",
        job.name,
        JOB_ARN,
        MODEL_ARN,
    )
    assert record.checkpoint is None and record.endedAt == "t1" and record.unknownBillingAttempts == 0
    assert isinstance(job.request, BedrockTrainingRequest) and record.outputUri == job.request.outputUri


# -- retry -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "cause", "kind"),
    [
        ("Bedrock.ThrottlingException", "Rate exceeded", "throttling"),
        ("Bedrock.ServiceQuotaExceededException", "too many customization jobs", "quota"),
        ("Bedrock.InternalServerException", "internal error", "transient"),
        ("Bedrock.ServiceUnavailableException", "try again", "transient"),
        ("States.TaskFailed", '{"status": "Failed", "failureMessage": "InternalServerException: retry"}', "transient"),
        ("Bedrock.ValidationException", "batchSize must be between 16 and 512", None),
        ("Bedrock.AccessDeniedException", "not authorized to perform iam:PassRole", None),
        ("States.TaskFailed", '{"status": "Failed", "failureMessage": "Invalid training data"}', None),
    ],
)
def test_bedrock_errors_are_classified(error: str, cause: str, kind: str | None) -> None:
    assert retry.classify(StepError(Error=error, Cause=cause)) == kind


def test_the_prepare_handler_uses_bedrock_not_sagemaker_on_bedrock(
    monkeypatch: pytest.MonkeyPatch, pipeline_env: Any
) -> None:
    from lambdas.pipeline import handlers

    client, stub = _stubbed()
    previous = JobAttempt(stage="rft", name="nova-run-1-0b9d6cbe-rft-a1", attempt=1, startedAt="t0")
    stub.add_response("get_model_customization_job", _described("Stopped"), {"jobIdentifier": previous.name})
    monkeypatch.setattr(handlers, "bedrock_client", lambda: client)
    asked: list[str] = []
    monkeypatch.setattr(handlers, "client", lambda service: asked.append(service))
    event = {
        "stage": "rft",
        "plan": _bedrock_plan().to_json(),
        "stages": _stages().to_json(),
        "previous": previous.to_json(),
    }
    with stub:
        job = JobAttempt.model_validate(handlers.prepare_job(event, CONTEXT))
    stub.assert_no_pending_responses()
    assert "sagemaker" not in asked
    assert job.attempt == 2 and isinstance(job.request, BedrockTrainingRequest)
    assert job.request.customizationType == "REINFORCEMENT_FINE_TUNING"
