"""The ``bedrock:createModelCustomizationJob.sync`` bridge on a one-task state machine.

The fixture template of ``fixture_stack.py`` with its definition replaced by a Bedrock
customization Task written as Step Functions takes it (capitalized members), with the
Retry and Catch the pipeline's job loop relies on.
"""

from __future__ import annotations

import json
from pathlib import Path

from offline.synth import Synthesized
from rehearsal import datasets
from rehearsal.runner import Result, Scenario, rehearse
from rehearsal.simulators.faults import Durations
from tests.integration.fixture_stack import ARTIFACTS_BUCKET, DATA_BUCKET, template

NOVA_2_LITE = "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-2-lite-v1:0:256k"


def _definition() -> dict:
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::bedrock:createModelCustomizationJob.sync",
        "Parameters": {
            "JobName.$": "$.jobName",
            "CustomModelName.$": "$.modelName",
            "RoleArn": "${BedrockRoleArn}",
            "BaseModelIdentifier": NOVA_2_LITE,
            "CustomizationType": "FINE_TUNING",
            "TrainingDataConfig": {"S3Uri.$": "$.datasets.sft"},
            "OutputDataConfig": {"S3Uri.$": "$.output"},
            "HyperParameters": {"epochCount": "2", "learningRate": "0.00001"},
            "JobTags": [{"Key": "nova:stage", "Value": "sft"}],
        },
        "ResultSelector": {"status.$": "$.Status", "model.$": "$.OutputModelArn", "name.$": "$.JobName"},
        "ResultPath": "$.job",
        "Retry": [{"ErrorEquals": ["Bedrock.ThrottlingException"], "IntervalSeconds": 300, "MaxAttempts": 2}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.jobError", "Next": "Job failed"}],
        "End": True,
    }
    return {
        "Comment": "bedrock bridge fixture",
        "StartAt": "Run SFT customization job",
        "States": {"Run SFT customization job": task, "Job failed": {"Type": "Pass", "End": True}},
    }


def _run(tmp_path: Path, scenario: Scenario | None = None, definition: dict | None = None) -> Result:
    document = template()
    resources = document["Resources"]
    resources["BedrockRole1A2B3C4D"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "bedrock.amazonaws.com"}}
                ],
            }
        },
    }
    machine = resources["StateMachine1A2B3C4D"]["Properties"]
    machine["DefinitionString"] = json.dumps(definition or _definition())
    machine["DefinitionSubstitutions"] = {"BedrockRoleArn": {"Fn::GetAtt": ["BedrockRole1A2B3C4D", "Arn"]}}
    # The SFT rows as the pipeline stages them for Bedrock (with its schemaVersion), served from a folder
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    staged = [{"schemaVersion": "bedrock-conversation-2024", **row} for row in datasets.sft_rows()]
    (folder / "sft.jsonl").write_bytes(datasets.jsonl(staged))
    scenario = scenario or Scenario()
    scenario.data_dir = folder
    scenario.replace_input = {
        "jobName": "fixture-sft-a1",
        "modelName": "fixture-sft",
        "datasets": {"sft": "s3://any-bucket/staged/sft.jsonl"},
        "output": f"s3://{ARTIFACTS_BUCKET}/runs/fixture/jobs/",
    }
    return rehearse(
        scenario, synthesized=Synthesized(outdir=tmp_path, template_json=document), out_dir=tmp_path / "out"
    )


def test_the_job_runs_on_the_clock_and_returns_the_final_description_written_as_step_functions_does(
    tmp_path: Path,
) -> None:
    result = _run(tmp_path)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    (job,) = result.jobs
    assert job["service"] == "bedrock" and job["status"] == "Completed"
    # the capitalized parameters reached the service as its members; the map's keys stayed as written
    assert job["request"]["trainingDataConfig"] == {"s3Uri": f"s3://{DATA_BUCKET}/staged/sft.jsonl"}
    assert job["request"]["jobTags"] == [{"key": "nova:stage", "value": "sft"}]
    assert job["hyper_parameters"] == {"epochCount": "2", "learningRate": "0.00001"}
    assert result.output["job"] == {"status": "Completed", "model": job["custom_model_arn"], "name": "fixture-sft-a1"}
    assert Durations().bedrock_sft * 60 <= result.simulated_seconds < Durations().bedrock_sft * 60 + 120
    scheduled = [e for e in result.history if e["type"] == "TaskScheduled"]
    assert scheduled[0]["taskScheduledEventDetails"]["resourceType"] == "bedrock"


def test_a_failed_job_raises_states_task_failed_with_its_failure_message(tmp_path: Path) -> None:
    result = _run(tmp_path, Scenario(fail_at="sft"))
    error = result.output["jobError"]
    assert error["Error"] == "States.TaskFailed"
    cause = json.loads(error["Cause"])
    assert cause["Status"] == "Failed" and "failure injected" in cause["FailureMessage"]
    assert "OutputModelArn" not in cause
    assert result.models == []


def test_a_throttled_request_is_a_bedrock_error_retried_on_the_simulated_clock(tmp_path: Path) -> None:
    result = _run(tmp_path, Scenario(throttle={"sft": "ThrottlingException"}))
    failed = [e for e in result.history if e["type"] == "TaskFailed"]
    assert failed[0]["taskFailedEventDetails"]["error"] == "Bedrock.ThrottlingException"
    assert (
        "(Service: Bedrock; Status Code: 400; Error Code: ThrottlingException"
        in (failed[0]["taskFailedEventDetails"]["cause"])
    )
    (job,) = result.jobs
    assert job["status"] == "Completed" and job["start_minute"] >= 5


def test_a_request_bedrock_refuses_is_a_validation_error_and_no_job(tmp_path: Path) -> None:
    document = _definition()
    document["States"]["Run SFT customization job"]["Parameters"]["HyperParameters"] = {"epochCount": "50"}
    result = _run(tmp_path, definition=document)
    error = result.output["jobError"]
    assert error["Error"] == "Bedrock.ValidationException"
    assert "hyperParameters.epochCount: 50 is out of range [1, 5]" in error["Cause"]
    assert result.jobs == []
