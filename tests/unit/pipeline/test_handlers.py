"""Handlers: thin wrappers that parse the event, call the domain module and return JSON for $.Payload."""

from __future__ import annotations

import functools
import importlib
import json
import sys
from typing import Any

import pytest
from botocore.stub import Stubber

from lambdas.pipeline import bedrock, environment
from lambdas.pipeline.validation import RunInputError
from lambdas.reward.config import reward_function
from offline.archive import put_archive
from offline.lambda_context import FakeLambdaContext
from tests.unit.pipeline import samples

CONTEXT = FakeLambdaContext("pipeline-test", aws_request_id="request-1")


def test_importing_the_handlers_creates_no_client_and_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PIPELINE_NAME", "DATA_BUCKET_NAME"):
        monkeypatch.delenv(name, raising=False)
    sys.modules.pop("lambdas.pipeline.handlers", None)
    module = importlib.import_module("lambdas.pipeline.handlers")
    assert module.environment.cache_info().currsize == 0 and module.client.cache_info().currsize == 0


def test_a_missing_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(environment.ConfigurationError, match="missing environment variables: PIPELINE_NAME"):
        environment.load_environment(
            {
                "DATA_BUCKET_NAME": "d",
                "ARTIFACTS_BUCKET_NAME": "a",
                "GRADER_FUNCTIONS": "{}",
                "BEDROCK_IMPORT_ROLE_ARN": samples.IMPORT_ROLE_ARN,
                "MODEL_KMS_KEY_ARN": samples.KMS_KEY_ARN,
                "RUN_POLICY": "{}",
                "AWS_REGION": "us-east-1",
            }
        )
    with pytest.raises(environment.ConfigurationError, match="invalid environment"):
        environment.load_environment(
            {
                "PIPELINE_NAME": "nova",
                "DATA_BUCKET_NAME": "d",
                "ARTIFACTS_BUCKET_NAME": "a",
                "GRADER_FUNCTIONS": "{}",
                "BEDROCK_IMPORT_ROLE_ARN": "not-an-arn",
                "MODEL_KMS_KEY_ARN": samples.KMS_KEY_ARN,
                "RUN_POLICY": "{}",
                "AWS_REGION": "us-east-1",
            }
        )


def test_validate_run_returns_the_plan_and_the_stage_records(handlers: Any, datasets: dict) -> None:
    event = {"input": samples.run_input(), "execution": samples.EXECUTION}
    result = handlers.validate_run(event, CONTEXT)
    assert set(result) == {"input", "execution", "plan", "stages"}
    assert result["plan"]["datasets"]["sft"]["etag"]
    assert result["plan"]["grader"]["version"] == "1.0.0"  # read from the shipped preset
    json.dumps(result)


def test_validate_run_reports_a_missing_dataset(handlers: Any, datasets: dict) -> None:
    event = {
        "input": samples.run_input(
            datasets={
                "sft": f"s3://{samples.DATA_BUCKET}/datasets/missing.jsonl",
                "rft": datasets["rft"],
                "eval": datasets["eval"],
            }
        ),
        "execution": samples.EXECUTION,
    }
    with pytest.raises(RunInputError, match="datasets.sft: .*missing.jsonl does not exist"):
        handlers.validate_run(event, CONTEXT)


def test_validate_run_resumes_from_a_checkpoint_its_run_record_holds(handlers: Any, s3: Any, datasets: dict) -> None:
    s3.put_object(
        Bucket=samples.ARTIFACTS_BUCKET, Key="runs/run-0-fc55bbdc/run.json", Body=samples.earlier_run_record()
    )
    event = {
        "input": samples.run_input(resumeFrom=samples.resume("rft", samples.SFT_CHECKPOINT)),
        "execution": samples.EXECUTION,
    }
    result = handlers.validate_run(event, CONTEXT)
    assert result["plan"]["resumeFrom"]["run"] == "run-0-fc55bbdc"
    assert result["stages"]["sft"]["checkpoint"] == samples.SFT_CHECKPOINT
    # the same input, when the earlier run is not in the artifacts bucket
    event["input"]["resumeFrom"]["run"] = "run-7-0123abcd"
    with pytest.raises(
        RunInputError, match=r"resumeFrom.run: no run 'run-7-0123abcd' in this pipeline's artifacts bucket"
    ):
        handlers.validate_run(event, CONTEXT)


def test_validate_run_names_the_field_of_a_checkpoint_of_another_account(
    handlers: Any, s3: Any, datasets: dict
) -> None:
    foreign = "s3://customer-escrow-111122223333-smtj-0a1b2c3d/nova-run-0-sft-a1/checkpoint/"
    record = samples.earlier_run_record(sft=foreign)
    s3.put_object(Bucket=samples.ARTIFACTS_BUCKET, Key="runs/run-0-fc55bbdc/run.json", Body=record)
    event = {"input": samples.run_input(resumeFrom=samples.resume("rft", foreign)), "execution": samples.EXECUTION}
    with pytest.raises(RunInputError) as caught:
        handlers.validate_run(event, CONTEXT)
    assert caught.value.problems == [
        f"resumeFrom.checkpoint: {foreign} is in an escrow bucket of account 111122223333, not of this account "
        "123456789012: the pipeline can use only checkpoints its own account's training jobs wrote"
    ]


def test_resolve_checkpoint_fails_the_stage_on_a_manifest_checkpoint_it_cannot_use(
    handlers: Any, s3: Any, pipeline_env: dict
) -> None:
    stages = {name: {"status": "PENDING"} for name in ("baselineEval", "sft", "sftEval", "rft", "finalEval")}
    request = samples.job_request("sft")
    job: dict[str, Any] = {"stage": "sft", "name": "nova-run-1-0b9d6cbe-sft-a1", "attempt": 1, "request": request}
    hyperpod = f"s3://customer-escrow-{samples.ACCOUNT}-hp-0a1b2c3d/nova-run-1-0b9d6cbe-sft-a1/checkpoint/"
    put_archive(
        s3, request["outputArchive"], {"manifest.json": json.dumps({"checkpoint_s3_bucket": hyperpod}).encode()}
    )
    job["result"] = {"status": "Completed", "arn": f"arn:aws:sagemaker:us-east-1:{samples.ACCOUNT}:training-job/x"}
    event = {"stage": "sft", "job": job, "stages": stages, "endedAt": "t1"}
    with pytest.raises(handlers.outputs.JobOutputError) as caught:
        handlers.resolve_checkpoint(event, CONTEXT)
    assert str(caught.value).startswith(f"manifest.json in {request['outputArchive']}: checkpoint_s3_bucket")
    assert "training-job evaluation cannot use it" in str(caught.value)
    # the account is the training job's: a job of another account may not report this account's checkpoint
    put_archive(
        s3,
        request["outputArchive"],
        {"manifest.json": json.dumps({"checkpoint_s3_bucket": samples.SFT_CHECKPOINT}).encode()},
    )
    job["result"]["arn"] = "arn:aws:sagemaker:us-east-1:111122223333:training-job/x"
    with pytest.raises(handlers.outputs.JobOutputError, match="not of this account 111122223333"):
        handlers.resolve_checkpoint(event, CONTEXT)


def test_the_job_stages_chain_through_the_handlers(
    handlers: Any, s3: Any, datasets: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = handlers.validate_run({"input": samples.run_input(), "execution": samples.EXECUTION}, CONTEXT)["plan"]
    # the deployed grader, answered by the same preset in-process
    monkeypatch.setattr(
        handlers.preflight, "lambda_grade_batch", lambda client, arn: reward_function(preset="classification")
    )
    # Service Quotas (not in moto) answers from botocore's model; the handler reuses this cached client
    quota_stub = Stubber(handlers.client("service-quotas"))
    quota_stub.add_response(
        "list_service_quotas",
        {"Quotas": [{"QuotaName": "ml.p5.48xlarge for training job usage", "QuotaCode": "L-TEST0001", "Value": 8.0}]},
        {"ServiceCode": "sagemaker", "MaxResults": 100},
    )
    quota_stub.activate()
    summary = handlers.preflight_checks({"plan": plan}, CONTEXT)
    assert set(summary) == {"datasets", "grader", "cost", "quotas", "leakage"} and summary["grader"]["passed"]
    assert summary["quotas"]["instanceTypes"][0]["quota"] == 8.0
    stages = {name: {"status": "PENDING"} for name in ("baselineEval", "sft", "sftEval", "rft", "finalEval")}
    job = handlers.prepare_job(
        {
            "stage": "sft",
            "plan": plan,
            "stages": stages,
            "previous": {"stage": "sft", "attempt": 0, "startedAt": "t0", "errors": []},
        },
        CONTEXT,
    )
    put_archive(
        s3,
        job["request"]["outputArchive"],
        {"manifest.json": json.dumps({"checkpoint_s3_bucket": samples.SFT_CHECKPOINT}).encode()},
    )
    job["result"] = {"name": job["name"], "status": "Completed", "arn": "arn:job"}
    stages = handlers.resolve_checkpoint({"stage": "sft", "job": job, "stages": stages, "endedAt": "t1"}, CONTEXT)
    assert stages["sft"]["status"] == "SUCCEEDED" and stages["sft"]["checkpoint"] == samples.SFT_CHECKPOINT
    assert stages["sft"]["jobArn"] == "arn:job" and stages["sft"]["startedAt"] == "t0"

    eval_job = handlers.prepare_job(
        {"stage": "finalEval", "plan": plan, "stages": stages, "previous": {"stage": "finalEval", "attempt": 0}},
        CONTEXT,
    )
    put_archive(s3, eval_job["request"]["outputArchive"], {"results_1.json": b'{"results": {"all": {"em": 0.8}}}'})
    stages = handlers.read_evaluation({"stage": "finalEval", "job": eval_job, "stages": stages}, CONTEXT)
    assert stages["finalEval"]["metrics"] == {"exact_match": 0.8}
    metrics = handlers.collect_metrics({"plan": plan, "stages": stages}, CONTEXT)
    assert metrics["candidate"] == "sft"
    decision = handlers.apply_gate({"plan": plan, "metrics": metrics}, CONTEXT)
    assert decision["passed"] is True and decision["champion"] is None


def test_an_rft_eval_evaluation_records_the_mean_reward_with_its_sample_count(handlers: Any, s3: Any) -> None:
    plan = samples.plan(evaluation={"task": "rft_eval"}, gate={"metric": "aggregate_reward_score"}).to_json()
    stages = samples.stages_after_training().to_json()
    job = handlers.prepare_job(
        {"stage": "finalEval", "plan": plan, "stages": stages, "previous": {"stage": "finalEval", "attempt": 0}},
        CONTEXT,
    )
    rewards = [{"id": str(i), "aggregate_reward_score": score} for i, score in enumerate((1.0, 0.5, 0.0))]
    lines = "\n".join(json.dumps(line) for line in rewards).encode()
    put_archive(s3, job["request"]["outputArchive"], {f"{job['name']}/eval-result/rewards.jsonl": lines})
    stages = handlers.read_evaluation({"stage": "finalEval", "job": job, "stages": stages}, CONTEXT)
    assert stages["finalEval"]["metrics"] == {"aggregate_reward_score": 0.5}
    assert stages["finalEval"]["metricStats"] == {
        "aggregate_reward_score": {"n": 3, "stderr": pytest.approx(0.5 / 3**0.5)}
    }
    metrics = handlers.collect_metrics({"plan": plan, "stages": stages}, CONTEXT)
    assert metrics["metric"] == "aggregate_reward_score"
    assert metrics["table"]["rft"] == {"aggregate_reward_score": 0.5}


def test_the_bedrock_client_is_checked_before_use(handlers: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a boto3 that predates the custom-model import and deployment operations
    class OldBedrock:
        def get_custom_model(self, **kwargs: Any) -> dict:
            raise AssertionError("called an operation of a client that failed its check")

    monkeypatch.setattr(handlers, "client", functools.lru_cache(lambda service: OldBedrock()))
    # When a Bedrock stage runs, then it stops before any call and names what is missing
    with pytest.raises(bedrock.BedrockClientTooOld, match="create_custom_model, create_custom_model_deployment"):
        handlers.check_model_import(
            {"model": {"arn": "arn:model", "name": "m", "checkpoint": "s3://escrow/c/", "status": "Creating"}}, CONTEXT
        )


def test_record_handlers_write_the_run_record(handlers: Any, s3: Any) -> None:
    state = {
        "input": {},
        "execution": samples.EXECUTION,
        "failedStage": "preflight",
        "error": {"Error": "PreflightError", "Cause": json.dumps({"errorMessage": "2 problems"})},
    }
    result = handlers.record_failed_run({"run": state, "endedAt": "t"}, CONTEXT)
    assert result["error"] == "PreflightError" and result["cause"] == "Preflight checks failed: 2 problems"
    body = s3.get_object(Bucket=samples.ARTIFACTS_BUCKET, Key="runs/run-1-0b9d6cbe/run.json")["Body"].read()
    assert json.loads(body)["status"] == "FAILED"
