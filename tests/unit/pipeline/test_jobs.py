"""Prepare <stage> job: recipe upload, CreateTrainingJob pieces, hyperparameters, fresh names per attempt."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from lambdas.pipeline import jobs
from lambdas.pipeline.catalog import INSTANCE_PRICE_USD_PER_HOUR
from lambdas.pipeline.jobs import MissingCheckpointError, prepare_job
from lambdas.pipeline.naming import STAGE_METHODS
from lambdas.pipeline.record import failed_job_record
from lambdas.pipeline.schema import JobAttempt, Plan, StageName, StageRecords
from lambdas.pipeline.stages import job_record
from tests.unit.pipeline import samples

IMAGE_ACCOUNT = "708977205387"


class FakeSageMaker:
    """describe/stop of earlier attempts; unknown jobs raise like the service does."""

    def __init__(self, statuses: dict[str, str] | None = None) -> None:
        self.statuses = statuses or {}
        self.stopped: list[str] = []

    def describe_training_job(self, TrainingJobName: str) -> dict:
        if TrainingJobName not in self.statuses:
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "Requested resource not found"}},
                "DescribeTrainingJob",
            )
        return {"TrainingJobStatus": self.statuses[TrainingJobName]}

    def stop_training_job(self, TrainingJobName: str) -> None:
        self.stopped.append(TrainingJobName)


def _prepare(
    s3: Any,
    stage: StageName,
    *,
    plan: Plan | None = None,
    stages: StageRecords | None = None,
    previous: dict | None = None,
    sagemaker: FakeSageMaker | None = None,
) -> dict:
    """The prepared job as it crosses Step Functions (JSON)."""
    return prepare_job(
        stage=stage,
        plan=plan or samples.plan(),
        stages=stages or samples.stages_after_training(),
        previous=JobAttempt.model_validate(
            previous or {"stage": stage, "attempt": 0, "startedAt": "2026-11-21T10:01:00Z", "errors": []}
        ),
        region="us-east-1",
        s3=s3,
        sagemaker=sagemaker or FakeSageMaker(),
    ).to_json()


def _recipe(s3: Any, job: dict) -> dict:
    bucket, key = job["request"]["recipeFile"][len("s3://") :].split("/", 1)
    return yaml.safe_load(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_sft_job_uses_the_base_model_the_converse_dataset_and_the_recipe_channel(s3: Any) -> None:
    job = _prepare(s3, "sft")
    request = job["request"]
    assert job["name"] == "nova-run-1-0b9d6cbe-sft-a1" and job["attempt"] == 1
    assert job["startedAt"] == "2026-11-21T10:01:00Z"
    assert (
        request["image"] == f"{IMAGE_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:SM-TJ-SFT-V2-latest"
    )
    # exactly what AWS's SageMaker Python SDK sends for this recipe: no model_type
    assert request["hyperParameters"] == {
        "sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/recipe.yaml",
        "base_model": "nova-lite-2/prod",
    }
    assert request["recipeUri"] == f"s3://{samples.ARTIFACTS_BUCKET}/runs/run-1-0b9d6cbe/recipes/sft/"
    assert request["recipeFile"] == f"s3://{samples.ARTIFACTS_BUCKET}/runs/run-1-0b9d6cbe/recipes/sft/recipe.yaml"
    # the copy pre-flight staged of the validated version, not the live key (a prefix) in the data bucket
    assert request["dataUri"] == f"s3://{samples.ARTIFACTS_BUCKET}/runs/run-1-0b9d6cbe/inputs/sft/sft.jsonl"
    assert request["outputArchive"] == (
        f"s3://{samples.ARTIFACTS_BUCKET}/runs/run-1-0b9d6cbe/jobs/sft/nova-run-1-0b9d6cbe-sft-a1/output/output.tar.gz"
    )
    assert (request["instanceType"], request["instanceCount"], request["maxRuntimeInSeconds"]) == (
        "ml.p5.48xlarge",
        4,
        3 * 3600,
    )
    assert all(isinstance(v, str) for v in request["hyperParameters"].values())


def test_the_uploaded_recipe_has_the_overrides_and_replicas_equal_to_the_instance_count(s3: Any) -> None:
    plan = samples.plan(sft={"overrides": {"lr": 5e-6, "max_steps": 100}, "instanceCount": 8})
    job = _prepare(s3, "sft", plan=plan)
    recipe = _recipe(s3, job)
    assert recipe["run"]["replicas"] == 8 == job["request"]["instanceCount"]
    assert recipe["run"]["name"] == job["name"]
    assert recipe["training_config"]["optim_config"]["lr"] == 5e-6
    assert recipe["run"]["data_s3_path"] == ""  # the channel carries the data


def test_rft_starts_from_the_sft_checkpoint_with_the_grader_as_reward(s3: Any) -> None:
    job = _prepare(s3, "rft")
    assert job["request"]["hyperParameters"] == {
        "sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/recipe.yaml",
        "base_model_location": samples.SFT_CHECKPOINT,
        "reward_lambda_arn": samples.GRADER_ARN,
    }
    assert job["request"]["dataUri"] == f"s3://{samples.ARTIFACTS_BUCKET}/runs/run-1-0b9d6cbe/inputs/rft/rft.jsonl"
    assert job["request"]["image"].endswith("nova-fine-tune-repo:SM-TJ-RFT-V2-latest")
    recipe = _recipe(s3, job)
    assert recipe["run"]["model_name_or_path"] == samples.SFT_CHECKPOINT
    assert recipe["training_config"]["rollout"]["rewards"]["api_endpoint"]["lambda_arn"] == samples.GRADER_ARN


@pytest.mark.parametrize(
    ("stage", "rft", "location"),
    [
        ("baselineEval", True, None),
        ("sftEval", True, samples.SFT_CHECKPOINT),
        ("finalEval", True, samples.RFT_CHECKPOINT),
        ("finalEval", False, samples.SFT_CHECKPOINT),
    ],
)
def test_evaluations_judge_the_right_model(s3: Any, stage: StageName, rft: bool, location: str | None) -> None:
    job = _prepare(s3, stage, stages=samples.stages_after_training(rft=rft))
    hyper = job["request"]["hyperParameters"]
    assert hyper.get("base_model_location") == location
    assert ("base_model" in hyper) == (location is None)
    assert len(hyper) == 2 and "model_type" not in hyper
    assert job["request"]["image"].endswith("nova-evaluation-repo:SM-TJ-Eval-V2-latest")
    assert job["request"]["dataUri"].endswith("/runs/run-1-0b9d6cbe/inputs/eval/gen_qa.jsonl")
    assert job["request"]["instanceCount"] == 1
    assert _recipe(s3, job)["evaluation"]["task"] == "gen_qa"
    assert "eval_lambda_arn" not in hyper


def test_rft_eval_names_its_grader_only_in_the_recipe(s3: Any) -> None:
    plan = samples.plan(evaluation={"task": "rft_eval"}, gate={"metric": "mean_reward"})
    job = _prepare(s3, "finalEval", plan=plan)
    # AWS's SDK sends no eval_lambda_arn (nor reward_lambda_arn) for rft_eval: the grader is in rl_env
    assert job["request"]["hyperParameters"] == {
        "sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/recipe.yaml",
        "base_model_location": samples.RFT_CHECKPOINT,
    }
    recipe = _recipe(s3, job)
    assert recipe["rl_env"]["reward_lambda_arn"] == samples.GRADER_ARN
    assert "reward_lambda_arn" not in recipe["run"] and "processor" not in recipe


@pytest.mark.parametrize("model", ["nova-lite", "nova-micro", "nova-pro", "nova-2-lite"])
def test_every_generation_evaluates_with_the_v2_evaluation_image(s3: Any, model: str) -> None:
    job = _prepare(s3, "baselineEval", plan=samples.plan(model=model, stages={"rft": False}))
    assert job["request"]["image"] == (
        f"{IMAGE_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/nova-evaluation-repo:SM-TJ-Eval-V2-latest"
    )


def test_a_retry_gets_a_new_name_stops_a_leftover_job_and_remembers_the_error(s3: Any) -> None:
    sagemaker = FakeSageMaker({"nova-run-1-0b9d6cbe-sft-a1": "InProgress"})
    previous = {
        **_prepare(s3, "sft"),
        "lastError": {"Error": "SageMaker.ResourceLimitExceededException", "Cause": "quota"},
    }
    job = _prepare(s3, "sft", previous=previous, sagemaker=sagemaker)
    assert job["name"] == "nova-run-1-0b9d6cbe-sft-a2" and job["attempt"] == 2
    assert sagemaker.stopped == ["nova-run-1-0b9d6cbe-sft-a1"]
    assert job["errors"] == [
        {
            "attempt": 1,
            "job": "nova-run-1-0b9d6cbe-sft-a1",
            "error": "SageMaker.ResourceLimitExceededException",
            "cause": "quota",
        }
    ]
    assert job["startedAt"] == previous["startedAt"]


def test_a_retry_storm_keeps_the_job_small(s3: Any) -> None:
    # Given a job beside a long sibling that fails every attempt with a long cause (a job description)
    previous = _prepare(s3, "baselineEval")
    for _ in range(jobs.MAX_ATTEMPTS_BESIDE_SIBLING):
        failed = {**previous, "lastError": {"Error": "States.TaskFailed" * 40, "Cause": "x" * 20_000}}
        previous = _prepare(s3, "baselineEval", previous=failed)
    # Then only the last few errors are kept, each truncated, and the attempt numbers say what came before
    assert previous["attempt"] == jobs.MAX_ATTEMPTS_BESIDE_SIBLING + 1
    assert [e["attempt"] for e in previous["errors"]] == list(range(44, 49))
    assert all(len(e["cause"]) == jobs.MAX_CAUSE_CHARS for e in previous["errors"])
    assert all(len(e["error"]) == jobs.MAX_ERROR_CHARS for e in previous["errors"])
    assert len(json.dumps(previous)) < 8 * 1024


def test_a_failed_or_never_created_previous_job_is_not_stopped(s3: Any) -> None:
    sagemaker = FakeSageMaker({"nova-run-1-0b9d6cbe-sft-a1": "Failed"})
    _prepare(
        s3, "sft", previous={"stage": "sft", "attempt": 1, "name": "nova-run-1-0b9d6cbe-sft-a1"}, sagemaker=sagemaker
    )
    _prepare(s3, "sft", previous={"stage": "sft", "attempt": 1, "name": "never-created"}, sagemaker=sagemaker)
    assert sagemaker.stopped == []


def test_the_backoff_grows_and_is_capped() -> None:
    assert [jobs.retry_delay_seconds(a) for a in (1, 2, 3, 4, 5, 6)] == [300, 600, 1200, 2400, 3600, 3600]


def _backoff_before(attempt: int) -> int:
    return sum(jobs.retry_delay_seconds(a) for a in range(1, attempt))


def test_a_job_beside_another_keeps_trying_until_its_sibling_must_have_ended() -> None:
    plan = samples.plan()  # baseline eval beside SFT (3 h), SFT eval beside RFT (4 h), evaluations 1.5 h
    for stage, sibling in (("baselineEval", "sft"), ("sft", "baselineEval"), ("sftEval", "rft"), ("rft", "sftEval")):
        attempts = jobs.max_attempts(stage, plan)
        sibling_holds = plan.jobs.of(STAGE_METHODS[sibling]).maxRuntimeSeconds + jobs.JOB_OVERHEAD_S
        # the backoff before the last attempt outlasts the sibling, the one before it does not
        assert _backoff_before(attempts) >= sibling_holds > _backoff_before(attempts - 1), stage
        assert attempts > plan.maxJobAttempts
    assert jobs.max_attempts("finalEval", plan) == plan.maxJobAttempts


def test_a_sibling_at_the_limit_of_its_runtime_still_leaves_a_later_attempt() -> None:
    # 2.25 h of SFT is exactly the backoff before attempt 6 (5+10+20+40+60 min): setup and upload need more
    plan = samples.plan(sft={"maxRuntimeHours": 2.25})
    assert _backoff_before(jobs.max_attempts("baselineEval", plan)) >= 2.25 * 3600 + jobs.JOB_OVERHEAD_S


def test_attempts_are_capped_for_siblings_that_may_run_for_weeks() -> None:
    plan = samples.plan(sft={"maxRuntimeHours": 28 * 24})
    assert jobs.max_attempts("baselineEval", plan) == jobs.MAX_ATTEMPTS_BESIDE_SIBLING


def test_without_a_sibling_a_job_gets_the_plans_attempts() -> None:
    plan = samples.plan(stages={"baselineEval": False})
    assert jobs.max_attempts("sft", plan) == plan.maxJobAttempts
    assert jobs.max_attempts("rft", plan) > plan.maxJobAttempts  # the SFT evaluation still runs beside it


def test_a_missing_checkpoint_is_a_clear_error(s3: Any) -> None:
    stages = StageRecords.model_validate(
        {name: {"status": "PENDING"} for name in ("baselineEval", "sft", "sftEval", "rft", "finalEval")}
    )
    with pytest.raises(MissingCheckpointError, match="RFT training needs the SFT checkpoint"):
        _prepare(s3, "rft", stages=stages)
    with pytest.raises(MissingCheckpointError, match="neither RFT nor SFT"):
        _prepare(s3, "finalEval", stages=stages)


def _described_failure(seconds: int | None) -> dict:
    """A job that ran and failed, as a .sync task's Catch stores it: the cause is the job's description."""
    description: dict[str, object] = {"TrainingJobStatus": "Failed", "FailureReason": "CapacityError: no capacity"}
    if seconds is not None:
        description["BillableTimeInSeconds"] = seconds
    return {"Error": "States.TaskFailed", "Cause": json.dumps(description)}


def test_every_attempt_that_ran_is_paid_for_and_one_of_unknown_time_is_counted_as_unknown(s3: Any) -> None:
    ran = {**_prepare(s3, "sft"), "lastError": _described_failure(600)}
    second = _prepare(s3, "sft", previous=ran)
    assert (second["billableSeconds"], second["unknownBillingAttempts"]) == (600, 0)
    # A refused CreateTrainingJob (no description) and a description without the field: unknown, counted 0
    refused = {**second, "lastError": {"Error": "SageMaker.ResourceLimitExceededException", "Cause": "quota"}}
    third = _prepare(s3, "sft", previous=refused)
    fourth = _prepare(s3, "sft", previous={**third, "lastError": _described_failure(None)})
    assert (fourth["billableSeconds"], fourth["unknownBillingAttempts"]) == (600, 2)

    finished = JobAttempt.model_validate(
        {**fourth, "result": {"name": fourth["name"], "status": "Completed", "billableSeconds": 3000}}
    )
    record = job_record(finished, status="SUCCEEDED", ended_at=None)
    count, instance_type = fourth["request"]["instanceCount"], fourth["request"]["instanceType"]
    assert (record.billableSeconds, record.unknownBillingAttempts) == (3600, 2)
    assert record.actualUsd == round(count * INSTANCE_PRICE_USD_PER_HOUR[instance_type], 2)


def test_the_last_failed_attempt_is_paid_for_from_its_cause(s3: Any) -> None:
    first = _prepare(s3, "rft")
    second = _prepare(s3, "rft", previous={**first, "lastError": _described_failure(120)})
    failed = failed_job_record(JobAttempt.model_validate({**second, "lastError": _described_failure(1800)}), None)
    assert (failed.billableSeconds, failed.unknownBillingAttempts) == (1920, 0)
    # An attempt whose job was never prepared costs nothing
    never = JobAttempt(stage="rft", attempt=0)
    assert job_record(never, status="FAILED", ended_at=None).billableSeconds == 0


def test_on_platform_bedrock_the_candidate_is_the_custom_model_a_customization_job_produced() -> None:
    model = "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-2-lite-v1:0:256k/abcdef123456"
    stages = {name: {"status": "SKIPPED"} for name in StageRecords.model_fields}
    stages["sft"] = {"status": "SUCCEEDED", "customModelArn": model.replace("abcdef", "fedcba")}
    stages["rft"] = {"status": "SUCCEEDED", "customModelArn": model}
    assert jobs.candidate_checkpoint(StageRecords.model_validate(stages)) == ("rft", model)
