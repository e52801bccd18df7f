"""The rehearsal's simulated Bedrock: customization jobs, custom models they produce, and Converse.

Each test routes boto3 calls to the simulators (``bridge.installed``) on moto and drives them with the
real client, so every request also passes botocore's own parameter validation first.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from rehearsal import bridge, clock, datasets
from rehearsal.runner import MOTO_CONFIG
from rehearsal.simulators.bedrock import BedrockSimulator
from rehearsal.simulators.bedrock_runtime import BedrockRuntimeSimulator
from rehearsal.simulators.faults import Durations, Faults
from rehearsal.simulators.functions import FunctionRuntime
from rehearsal.simulators.sagemaker import SageMakerSimulator

ACCOUNT, REGION = "123456789012", "us-east-1"
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
BUCKET = "data-bucket"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/customization"
GRADER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:grader"
NOVA_2_LITE = "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-2-lite-v1:0:256k"


@dataclass
class World:
    bedrock: BedrockSimulator
    runtime: BedrockRuntimeSimulator
    client: Any
    inference: Any
    grader_batches: list[list[dict]] = field(default_factory=list)
    grader_answer: Any = None


def _grader(world_ref: list[World]):
    def invoke(arn: str, batch: list) -> Any:
        world = world_ref[0]
        assert arn == GRADER
        world.grader_batches.append(batch)
        if world.grader_answer is not None:
            return world.grader_answer
        return [{"id": item["id"], "aggregate_reward_score": 1.0} for item in batch]

    return invoke


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    holder: list[World] = []
    faults = Faults()
    with mock_aws(config=MOTO_CONFIG), FunctionRuntime(code_root=tmp_path, log_dir=None) as functions:
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        for kind, body in datasets.all_datasets().items():
            s3.put_object(Bucket=BUCKET, Key=f"data/{kind}.jsonl", Body=body)
        for kind, body in datasets.all_datasets(bedrock=True).items():
            s3.put_object(Bucket=BUCKET, Key=f"bedrock/{kind}.jsonl", Body=body)
        # RFT rows given to an SFT job: a system turn inside messages, and no assistant turn
        s3.put_object(Bucket=BUCKET, Key="raw/sft.jsonl", Body=datasets.jsonl(datasets.rft_rows()))
        sagemaker = SageMakerSimulator(
            account=ACCOUNT, region=REGION, epoch=EPOCH, faults=faults, durations=Durations()
        )
        bedrock = BedrockSimulator(
            account=ACCOUNT,
            region=REGION,
            epoch=EPOCH,
            faults=faults,
            durations=Durations(),
            checkpoints=sagemaker.checkpoints,
            invoke_lambda=_grader(holder),
        )
        runtime = BedrockRuntimeSimulator(bedrock)
        runtime.learn(datasets.all_datasets()["eval"])
        with (
            bridge.installed(runtime=functions, sagemaker=sagemaker, bedrock=bedrock, bedrock_runtime=runtime),
            clock.using(clock.Lane(EPOCH)),
        ):
            holder.append(
                World(
                    bedrock,
                    runtime,
                    boto3.client("bedrock", region_name=REGION),
                    boto3.client("bedrock-runtime", region_name=REGION),
                )
            )
            yield holder[0]


def _sft_request(**changes: Any) -> dict:
    request = {
        "jobName": "nova-run-1-sft-a1",
        "customModelName": "nova-run-1-sft",
        "roleArn": ROLE,
        "baseModelIdentifier": NOVA_2_LITE,
        "customizationType": "FINE_TUNING",
        "trainingDataConfig": {"s3Uri": f"s3://{BUCKET}/data/sft.jsonl"},
        "outputDataConfig": {"s3Uri": f"s3://{BUCKET}/runs/run-1/jobs/"},
        "hyperParameters": {"epochCount": "2", "learningRate": "0.00001", "learningRateWarmupSteps": "10"},
        "clientRequestToken": "nova-run-1-sft-a1",
    }
    request.update(changes)
    return request


def _rft_request(**changes: Any) -> dict:
    request = _sft_request(
        jobName="nova-run-1-rft-a1",
        customModelName="nova-run-1-rft",
        customizationType="REINFORCEMENT_FINE_TUNING",
        trainingDataConfig={"s3Uri": f"s3://{BUCKET}/bedrock/rft.jsonl"},
        clientRequestToken="nova-run-1-rft-a1",
        customizationConfig={
            "rftConfig": {
                "graderConfig": {"lambdaGrader": {"lambdaArn": GRADER}},
                "hyperParameters": {"epochCount": 1, "batchSize": 64, "trainingSamplePerPrompt": 4},
            }
        },
    )
    del request["hyperParameters"]
    request.update(changes)
    return request


def _refusal(call: Any, **request: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**request)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    return str(caught.value.response["Error"]["Message"])


# -- customization jobs ----------------------------------------------------------------------


def test_a_job_runs_the_published_duration_then_its_custom_model_is_active_and_deployable(world: World) -> None:
    arn = world.client.create_model_customization_job(**_sft_request())["jobArn"]
    assert arn.startswith(f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-customization-job/amazon.nova-2-lite-v1:0:256k/")
    assert world.client.create_model_customization_job(**_sft_request())["jobArn"] == arn  # same token, same job

    clock.advance(89 * 60)
    running = world.client.get_model_customization_job(jobIdentifier="nova-run-1-sft-a1")
    assert running["status"] == "InProgress" and "outputModelArn" not in running
    assert running["statusDetails"]["validationDetails"]["status"] == "Completed"
    assert running["statusDetails"]["trainingDetails"]["status"] == "InProgress"

    clock.advance(60)
    done = world.client.get_model_customization_job(jobIdentifier=arn)
    assert done["status"] == "Completed"
    assert (done["endTime"] - done["creationTime"]).total_seconds() == Durations().bedrock_sft * 60
    model_arn = done["outputModelArn"]
    assert model_arn.startswith(f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/amazon.nova-2-lite-v1:0:256k/")
    model = world.client.get_custom_model(modelIdentifier=model_arn)
    assert model["modelStatus"] == "Active" and model["customizationType"] == "FINE_TUNING"
    assert model["jobArn"] == arn

    # The job's model deploys on demand like an imported one, and Converse then reaches it
    deployment = world.client.create_custom_model_deployment(modelDeploymentName="nova-run-1-sft", modelArn=model_arn)
    arn_deployment = deployment["customModelDeploymentArn"]
    with pytest.raises(ClientError, match="ModelNotReady"):
        world.inference.converse(modelId=arn_deployment, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    clock.advance(Durations().deploy * 60)
    answer = world.inference.converse(modelId=arn_deployment, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert answer["stopReason"] == "end_turn" and world.runtime.calls[-1].evaluates == "sft"


def test_requests_are_checked_against_botocore_and_bedrocks_own_rules(world: World) -> None:
    create = world.client.create_model_customization_job
    # a pattern botocore leaves to the service
    assert "must match pattern" in _refusal(create, **_sft_request(customModelName="nova run!"))
    # RFT is offered for Nova 2 Lite only
    old_lite = "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0:300k"
    message = _refusal(create, **_rft_request(baseModelIdentifier=old_lite))
    assert "does not support customization type REINFORCEMENT_FINE_TUNING" in message
    # an RFT job needs its grader; SFT hyperparameters are Nova's documented ones, in range
    assert "lambdaGrader is required" in _refusal(create, **_rft_request(customizationConfig={"rftConfig": {}}))
    message = _refusal(create, **_sft_request(hyperParameters={"epochCount": "9", "batch_size": "8"}))
    assert "hyperParameters.epochCount: 9 is out of range [1, 5]" in message
    assert "hyperParameters.batch_size: not a hyperparameter" in message
    # RFT hyperparameter ranges come from botocore's RFTHyperParameters shapes
    bad = _rft_request()
    bad["customizationConfig"]["rftConfig"]["hyperParameters"]["trainingSamplePerPrompt"] = 32
    assert "trainingSamplePerPrompt: 32 is out of range [2, 16]" in _refusal(create, **bad)
    assert world.bedrock.jobs == {}


def test_an_rft_job_calls_the_grader_with_rollouts_of_its_training_rows(world: World) -> None:
    world.client.create_model_customization_job(**_rft_request())
    clock.advance(Durations().bedrock_rft * 60)
    job = world.client.get_model_customization_job(jobIdentifier="nova-run-1-rft-a1")

    assert job["status"] == "Completed"
    (batch,) = world.grader_batches
    rows = datasets.rft_rows()
    assert [item["id"] for item in batch] == [row["id"] for row in rows[: len(batch)]]
    for item, row in zip(batch, rows, strict=False):
        # Bedrock puts the reference inside metadata and appends the model's answer as the last turn
        assert item["metadata"]["reference_answer"] == row["reference_answer"] and "reference_answer" not in item
        assert item["messages"][:-1] == row["messages"] and item["messages"][-1]["role"] == "assistant"
    assert world.bedrock.jobs["nova-run-1-rft-a1"].mean_reward == 1.0


def test_a_grader_that_breaks_the_reward_contract_fails_the_job(world: World) -> None:
    world.grader_answer = {"scores": [1.0]}
    world.client.create_model_customization_job(**_rft_request())
    clock.advance(Durations().bedrock_rft * 60)
    job = world.client.get_model_customization_job(jobIdentifier="nova-run-1-rft-a1")
    assert job["status"] == "Failed"
    assert "breaks the contract: expected a bare JSON list, got dict" in job["failureMessage"]
    assert "outputModelArn" not in job and world.bedrock.models == {}


def test_an_injected_failure_ends_the_job_failed_early_with_a_message(world: World) -> None:
    world.bedrock.faults = Faults(fail_at="sft")
    world.client.create_model_customization_job(**_sft_request())
    clock.advance(Durations().bedrock_sft * 60)
    job = world.client.get_model_customization_job(jobIdentifier="nova-run-1-sft-a1")
    assert job["status"] == "Failed" and "failure injected" in job["failureMessage"]
    assert (job["endTime"] - job["creationTime"]).total_seconds() < Durations().bedrock_sft * 60
    assert job["statusDetails"]["trainingDetails"]["status"] == "Failed"


def test_training_data_bedrock_cannot_read_fails_the_job_in_its_validation_phase(world: World) -> None:
    world.client.create_model_customization_job(**_sft_request(trainingDataConfig={"s3Uri": f"s3://{BUCKET}/raw/"}))
    # an RFT job needs 100 records; the SageMaker road's generated RFT set has 72
    world.client.create_model_customization_job(
        **_rft_request(trainingDataConfig={"s3Uri": f"s3://{BUCKET}/data/rft.jsonl"})
    )
    clock.advance(Durations().bedrock_sft * 60 * 0.04)
    sft = world.client.get_model_customization_job(jobIdentifier="nova-run-1-sft-a1")
    assert sft["status"] == "Failed" and sft["statusDetails"]["validationDetails"]["status"] == "Failed"
    assert f"record 1 of s3://{BUCKET}/raw/ has the roles ['system', 'user']" in sft["failureMessage"]
    clock.advance(Durations().bedrock_rft * 60 * 0.04)
    rft = world.client.get_model_customization_job(jobIdentifier="nova-run-1-rft-a1")
    assert rft["status"] == "Failed" and "holds 72 records; RFT takes at least 100" in rft["failureMessage"]
    assert world.grader_batches == []


def test_a_throttled_stage_is_refused_once_then_accepted(world: World) -> None:
    world.bedrock.faults = Faults(throttle={"rft": "ThrottlingException"})
    with pytest.raises(ClientError) as caught:
        world.client.create_model_customization_job(**_rft_request())
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert world.client.create_model_customization_job(**_rft_request())["jobArn"]
    assert world.bedrock.rejected == [{"name": "nova-run-1-rft-a1", "stage": "rft", "error": "ThrottlingException"}]


def test_stopping_a_job_ends_it_stopped_without_a_model(world: World) -> None:
    world.client.create_model_customization_job(**_sft_request())
    clock.advance(600)
    world.client.stop_model_customization_job(jobIdentifier="nova-run-1-sft-a1")
    (summary,) = world.client.list_model_customization_jobs(statusEquals="Stopped")["modelCustomizationJobSummaries"]
    assert summary["jobName"] == "nova-run-1-sft-a1" and "customModelArn" not in summary


# -- Converse ------------------------------------------------------------------------------


def _ask(world: World, model_id: str, row: dict) -> str:
    answer = world.inference.converse(
        modelId=model_id,
        system=[{"text": row["system"]}],
        messages=[{"role": "user", "content": [{"text": row["query"]}]}],
        inferenceConfig={"maxTokens": 64, "temperature": 0.0},
        additionalModelRequestFields={"reasoningConfig": {"type": "disabled"}},
    )
    assert answer["usage"]["totalTokens"] == answer["usage"]["inputTokens"] + answer["usage"]["outputTokens"] > 0
    return str(answer["output"]["message"]["content"][0]["text"])


def _exact_match(world: World, model_id: str) -> float:
    rows = datasets.eval_rows()
    return sum(_ask(world, model_id, row) == row["response"] for row in rows) / len(rows)


def _deployed(world: World, request: dict) -> str:
    world.client.create_model_customization_job(**request)
    clock.advance(Durations().bedrock_rft * 60)
    model = world.client.get_model_customization_job(jobIdentifier=request["jobName"])["outputModelArn"]
    name = request["customModelName"] + "-od"
    arn = world.client.create_custom_model_deployment(modelDeploymentName=name, modelArn=model)
    clock.advance(Durations().deploy * 60)
    return str(arn["customModelDeploymentArn"])


def test_answers_follow_the_case_studys_quality_per_model_and_are_deterministic(world: World) -> None:
    base = _exact_match(world, "us.amazon.nova-2-lite-v1:0")
    sft = _exact_match(world, _deployed(world, _sft_request()))
    rft = _exact_match(world, _deployed(world, _rft_request()))
    # 12 rows: the nearest the case study's 13% / 77% / 79% that twelve answers allow
    assert (base, sft, rft) == (2 / 12, 9 / 12, 9 / 12)
    assert _exact_match(world, "us.amazon.nova-2-lite-v1:0") == base
    assert {c.evaluates for c in world.runtime.calls} == {"baseline", "sft", "rft"}


def test_models_bedrock_would_not_invoke_are_refused(world: World) -> None:
    row = datasets.eval_rows()[0]
    with pytest.raises(ClientError, match="inference profile"):
        _ask(world, "amazon.nova-2-lite-v1:0", row)  # Nova 2 Lite is served through inference profiles
    world.client.create_model_customization_job(**_sft_request())
    clock.advance(Durations().bedrock_sft * 60)
    model = world.client.get_model_customization_job(jobIdentifier="nova-run-1-sft-a1")["outputModelArn"]
    with pytest.raises(ClientError, match="ValidationException"):  # on demand, a custom model needs a deployment
        _ask(world, model, row)
    missing = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model-deployment/abcdef123456"
    with pytest.raises(ClientError, match="not found"):
        _ask(world, missing, row)


def test_converse_faults_throttle_once_and_fail_the_final_model(world: World) -> None:
    row = datasets.eval_rows()[0]
    deployment = _deployed(world, _rft_request())
    world.bedrock.faults = Faults(fail_at="eval", throttle={"eval": "ThrottlingException"})
    with pytest.raises(ClientError, match="ThrottlingException"):
        _ask(world, "us.amazon.nova-2-lite-v1:0", row)
    assert _ask(world, "us.amazon.nova-2-lite-v1:0", row)
    with pytest.raises(ClientError, match="ModelErrorException"):
        _ask(world, deployment, row)


def test_a_request_that_does_not_fit_botocores_model_is_refused_before_it_is_answered(world: World) -> None:
    params = {"modelId": "us.amazon.nova-2-lite-v1:0", "messages": [{"role": "robot", "content": []}]}
    with pytest.raises(ClientError) as caught:
        world.runtime.converse(params)
    assert "'robot' is not one of" in caught.value.response["Error"]["Message"]


def test_the_bridge_renames_step_functions_parameters_to_api_members_and_back() -> None:
    written = {
        "JobName": "j",
        "TrainingDataConfig": {"S3Uri": "s3://b/k"},
        "HyperParameters": {"epochCount": "2"},
        "CustomizationConfig": {
            "RftConfig": {
                "GraderConfig": {"LambdaGrader": {"LambdaArn": GRADER}},
                "HyperParameters": {"BatchSize": 64},
            }
        },
        "JobTags": [{"Key": "nova:run-id", "Value": "r"}],
        "Unknown": 1,
    }
    request = bridge.api_members("bedrock", "CreateModelCustomizationJob", written)
    assert request == {
        "jobName": "j",
        "trainingDataConfig": {"s3Uri": "s3://b/k"},
        "hyperParameters": {"epochCount": "2"},  # a map's keys are data
        "customizationConfig": {
            "rftConfig": {"graderConfig": {"lambdaGrader": {"lambdaArn": GRADER}}, "hyperParameters": {"batchSize": 64}}
        },
        "jobTags": [{"key": "nova:run-id", "value": "r"}],
        "Unknown": 1,  # left for the shape check to refuse
    }
    response = {"jobName": "j", "status": "Failed", "failureMessage": "m", "creationTime": EPOCH}
    assert bridge.written_as_step_functions("bedrock", "GetModelCustomizationJob", response) == {
        "JobName": "j",
        "Status": "Failed",
        "FailureMessage": "m",
        "CreationTime": int(EPOCH.timestamp() * 1000),
    }
    assert json.dumps(request)  # plain JSON, as the simulator receives it
