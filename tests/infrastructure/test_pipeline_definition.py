"""The synthesized state machine definition, rendered as CloudFormation renders it, against the services' APIs.

The DefinitionString is rendered with every DefinitionSubstitutions entry resolved to a placeholder ARN,
then every Task's Parameters are checked against botocore's input shape of the operation it calls
(member names, required members, enums, patterns, nested structures; ``.$`` keys count as the member),
and the whole definition goes through asl-validator.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lambdas.pipeline import bedrock_hyperparameters
from lambdas.pipeline.naming import STAGES
from offline.asl import DEFINITION_FILE, iter_states, pipeline_state_machine, render
from offline.shapes import operation_of, task_problems
from offline.synth import Synthesized
from stepfunctions.pipeline import FUNCTIONS

REPO_ROOT = Path(__file__).resolve().parents[2]
ASL_VALIDATOR = REPO_ROOT / "node_modules" / ".bin" / "asl-validator"


@pytest.fixture(scope="module")
def rendered(synthesized: Synthesized) -> tuple[dict, dict[str, str]]:
    logical_id = pipeline_state_machine(synthesized.template_json)
    return render(synthesized.template_json, logical_id, synthesized.definition(logical_id))


def test_the_definition_file_is_deployed_unchanged_as_an_asset(synthesized: Synthesized) -> None:
    logical_id = pipeline_state_machine(synthesized.template_json)
    properties = synthesized.template_json["Resources"][logical_id]["Properties"]
    assert "DefinitionString" not in properties
    assert properties["DefinitionS3Location"]["Key"].endswith(".json")
    assert synthesized.definition(logical_id) == DEFINITION_FILE.read_text()


def test_every_placeholder_is_substituted(rendered: tuple[dict, dict]) -> None:
    definition, substitutions = rendered
    assert "${" not in json.dumps(definition)
    assert substitutions["PipelineName"] == "nova"


def test_every_task_calls_a_known_integration(rendered: tuple[dict, dict]) -> None:
    definition, _ = rendered
    resources = {state["Resource"] for _, state in iter_states(definition) if state["Type"] == "Task"}
    assert resources == {
        "arn:aws:states:::lambda:invoke",
        "arn:aws:states:::lambda:invoke.waitForTaskToken",  # Wait for approval
        "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "arn:aws:states:::bedrock:createModelCustomizationJob.sync",  # platform bedrock
        "arn:aws:states:::dynamodb:putItem",
    }


def test_every_task_matches_the_botocore_input_shape(rendered: tuple[dict, dict]) -> None:
    definition, substitutions = rendered
    tasks = [(name, state) for name, state in iter_states(definition) if state["Type"] == "Task"]
    # the tasks invoke exactly the functions the stack creates for the pipeline
    assert {s["Parameters"]["FunctionName"] for _, s in tasks if "FunctionName" in s["Parameters"]} == {
        substitutions[f"{function.construct_id}FunctionArn"] for function in FUNCTIONS
    }
    assert [problem for name, state in tasks for problem in task_problems(name, state)] == []


def test_the_training_jobs_use_the_documented_channels_and_settings(rendered: tuple[dict, dict]) -> None:
    definition, substitutions = rendered
    jobs = {
        name: state["Parameters"]
        for name, state in iter_states(definition)
        if state.get("Resource") == "arn:aws:states:::sagemaker:createTrainingJob.sync"
    }
    # one training job per job stage, tagged with its stage
    stage_tags = [next(t["Value"] for t in p["Tags"] if t["Key"] == "nova:stage") for p in jobs.values()]
    assert sorted(stage_tags) == sorted(STAGES)
    for name, parameters in jobs.items():
        channels = {c["ChannelName"]: c for c in parameters["InputDataConfig"]}
        assert channels["recipe"]["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix"
        assert channels["recipe"]["InputMode"] == "File"
        expected = "Converse" if name == "Run SFT training job" else "S3Prefix"
        assert channels["train"]["DataSource"]["S3DataSource"]["S3DataType"] == expected, name
        assert parameters["AlgorithmSpecification"]["TrainingInputMode"] == "File"
        assert parameters["ProfilerConfig"] == {"DisableProfiler": True}
        assert parameters["RoleArn"] == substitutions["SageMakerRoleArn"]
        assert parameters["OutputDataConfig"]["KmsKeyId"] == substitutions["KmsKeyArn"]
        assert parameters["TrainingJobName.$"] == "$.job.name"
        assert parameters["StoppingCondition"] == {"MaxRuntimeInSeconds.$": "$.job.request.maxRuntimeInSeconds"}
        assert parameters["HyperParameters.$"] == "$.job.request.hyperParameters"


def test_the_bedrock_customization_jobs_pass_the_role_key_tags_and_the_stages_settings(
    rendered: tuple[dict, dict],
) -> None:
    definition, substitutions = rendered
    jobs = {
        name: state
        for name, state in iter_states(definition)
        if state.get("Resource") == "arn:aws:states:::bedrock:createModelCustomizationJob.sync"
    }
    assert sorted(jobs) == ["Run RFT customization job on Bedrock", "Run SFT customization job on Bedrock"]
    rft_members = {p.name for p in bedrock_hyperparameters.table("rft").values()}
    for name, state in jobs.items():
        parameters = state["Parameters"]
        stage = "sft" if name.startswith("Run SFT") else "rft"
        assert parameters["RoleArn"] == substitutions["BedrockCustomizationRoleArn"]
        assert parameters["CustomModelKmsKeyId"] == substitutions["KmsKeyArn"]
        for tags in (parameters["JobTags"], parameters["CustomModelTags"]):
            assert {t["Key"]: t.get("Value", t.get("Value.$")) for t in tags} == {
                "nova:pipeline": substitutions["PipelineName"],
                "nova:run-id": "$.plan.runId",
                "nova:stage": stage,
            }
        assert parameters["JobName.$"] == parameters["ClientRequestToken.$"] == "$.job.name"
        assert parameters["TrainingDataConfig"] == {"S3Uri.$": "$.job.request.trainingDataUri"}
        assert parameters["OutputDataConfig"] == {"S3Uri.$": "$.job.request.outputUri"}
        # what .sync returns is not relied on; a failure goes to the retry decision
        assert state["ResultPath"] is None
        assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"] and state["Catch"][0]["Next"].startswith("Decide")
        if stage == "sft":
            assert parameters["CustomizationType"] == "FINE_TUNING"
            assert parameters["HyperParameters.$"] == "$.job.request.hyperParameters"
            assert "CustomizationConfig" not in parameters
            continue
        assert parameters["CustomizationType"] == "REINFORCEMENT_FINE_TUNING"
        assert "HyperParameters.$" not in parameters
        rft = parameters["CustomizationConfig"]["RftConfig"]
        assert rft["GraderConfig"] == {"LambdaGrader": {"LambdaArn.$": "$.job.request.graderArn"}}
        assert {key.removesuffix(".$"): path for key, path in rft["HyperParameters"].items()} == {
            member[:1].upper() + member[1:]: f"$.job.request.rftHyperParameters.{member}" for member in rft_members
        }


def test_the_shape_check_reads_bedrock_parameters_in_step_functions_spelling() -> None:
    # Step Functions capitalizes each member of Bedrock's camelCase API: the API's spelling is a mistake there
    good = {
        "Resource": "arn:aws:states:::bedrock:createModelCustomizationJob.sync",
        "Parameters": {
            "JobName": "nova-run-sft-a1",
            "CustomModelName": "nova-run-sft-a1",
            "RoleArn": "arn:aws:iam::123456789012:role/r",
            "BaseModelIdentifier": "amazon.nova-2-lite-v1:0:256k",
            "CustomizationType": "REINFORCEMENT_FINE_TUNING",
            "TrainingDataConfig": {"S3Uri": "s3://bucket/data.jsonl"},
            "OutputDataConfig": {"S3Uri": "s3://bucket/out/"},
            "CustomizationConfig": {"RftConfig": {"HyperParameters": {"BatchSize": 64, "ReasoningEffort": "low"}}},
        },
    }
    assert task_problems("Good", good) == []
    bad = json.loads(json.dumps(good))
    bad["Parameters"]["customModelName"] = bad["Parameters"].pop("CustomModelName")
    bad["Parameters"]["CustomizationType"] = "SUPERVISED"
    bad["Parameters"]["CustomizationConfig"]["RftConfig"]["HyperParameters"] = {"BatchSize": 8, "Epochs": 2}
    _assert_reported(
        bad,
        "customModelName: not a member",
        "required member CustomModelName",
        "'SUPERVISED' is not one of CustomizationType",
        "BatchSize: 8 is out of range [16, 512]",
        "Epochs: not a member",
    )


def _assert_reported(state: dict, *fragments: str) -> None:
    """Each fragment is in one of the shape check's problems with the Task ``state``."""
    text = "\n".join(task_problems("Bad", state))
    for fragment in fragments:
        assert fragment in text, fragment


def test_the_shape_check_catches_real_mistakes() -> None:
    # Given parameters with the mistakes linters accept, when checked, then each one is reported
    bad = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {
            "TrainingJobName": "ok-name",
            "RoleArn": "arn:aws:iam::123456789012:role/r",
            "AlgorithmSpecification": {"TrainingImage": "x", "TrainingInputMode": "file"},
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {"S3DataSource": {"S3DataType": "Conversation", "S3Uri.$": "$.x"}},
                }
            ],
            "OutputDataConfig": {"S3OutputPath.$": "$.o"},
            "ResourceConfig": {"InstanceType": "ml.ml.p5.48xlarge", "InstanceCount": 1, "VolumeSizeInGB": 100},
            "StoppingCondition": {"MaxRuntime.$": "$.t"},
            "Hyperparameters.$": "$.h",
        },
    }
    _assert_reported(
        bad,
        "'file' is not one of TrainingInputMode",
        "'Conversation' is not one of S3DataType",
        "'ml.ml.p5.48xlarge' is not one of TrainingInstanceType",
        "MaxRuntime: not a member",
        "Hyperparameters: not a member",
    )
    lambda_bad = {"Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"Function": "f", "Payload": {}}}
    assert any("required member FunctionName" in p for p in task_problems("BadLambda", lambda_bad))
    assert operation_of("arn:aws:states:::aws-sdk:bedrock:getCustomModel") == ("bedrock", "GetCustomModel")


def test_the_rendered_definition_passes_asl_validator(rendered: tuple[dict, dict], tmp_path: Path) -> None:
    assert ASL_VALIDATOR.exists(), "run `npm ci` (asl-validator is pinned in package.json)"
    definition, _ = rendered
    path = tmp_path / "pipeline.asl.json"
    path.write_text(json.dumps(definition))
    result = subprocess.run([str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_asl_validator_rejects_a_broken_definition(rendered: tuple[dict, dict], tmp_path: Path) -> None:
    definition, _ = rendered
    broken = json.loads(json.dumps(definition))
    broken["States"]["Collect metrics"]["Next"] = "No such state"
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(broken))
    result = subprocess.run([str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
