"""A small hand-written template that exercises every bridge patch without the real pipeline.

A lambda:invoke Task (two functions sharing one handler module with different
environments), a nested invocation, a Parallel of a Wait branch and a
SageMaker ``createTrainingJob.sync`` branch, a Lambda error caught by its class
name, and Bedrock calls from a handler. The definition is a ``Fn::Join`` with
``${...}`` placeholders filled by ``DefinitionSubstitutions``, as CDK emits it.
"""

from __future__ import annotations

import json
from pathlib import Path

from offline.synth import Synthesized

HANDLERS = "tests.integration.fixture_handlers"
SFT_IMAGE = "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:SM-TJ-SFT-V2-latest"
LAMBDA_RETRY = [{"ErrorEquals": ["Lambda.TooManyRequestsException"], "IntervalSeconds": 2, "MaxAttempts": 3}]


def _invoke(function: str, payload: dict, result_path: str, next_state: str | None, **extra) -> dict:
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": f"${{{function}}}", "Payload": payload},
        "ResultSelector": {"value.$": "$.Payload"},
        "ResultPath": result_path,
        "Retry": LAMBDA_RETRY,
        **extra,
    }
    state.update({"Next": next_state} if next_state else {"End": True})
    return state


def training_job_state(instance_type: str = "ml.p5.48xlarge") -> dict:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {
            "TrainingJobName.$": "$.jobName",
            "RoleArn": "${SageMakerRoleArn}",
            "AlgorithmSpecification": {"TrainingImage": SFT_IMAGE, "TrainingInputMode": "File"},
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "InputMode": "File",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "Converse",
                            "S3Uri.$": "$.data",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
            ],
            "OutputDataConfig": {"S3OutputPath.$": "$.output"},
            "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 100},
            "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
            "HyperParameters": {"base_model": "nova-lite-2/prod"},
        },
        "ResultSelector": {
            "name.$": "$.TrainingJobName",
            "status.$": "$.TrainingJobStatus",
            "arn.$": "$.TrainingJobArn",
        },
        "ResultPath": "$.job",
        "Retry": [{"ErrorEquals": ["SageMaker.ThrottlingException"], "IntervalSeconds": 300, "MaxAttempts": 2}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.jobError", "Next": "Job failed"}],
        "End": True,
    }


def definition(instance_type: str = "ml.p5.48xlarge") -> dict:
    return {
        "Comment": "bridge fixture",
        "StartAt": "Greet in English",
        "States": {
            "Greet in English": _invoke("GreetEnglishArn", {"who.$": "$.who"}, "$.english", "Greet from a function"),
            "Greet from a function": _invoke("NestedArn", {}, "$.nested", "Train and wait"),
            "Train and wait": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Wait ten minutes",
                        "States": {
                            "Wait ten minutes": {"Type": "Wait", "Seconds": 600, "Next": "Greet in French"},
                            "Greet in French": _invoke("GreetFrenchArn", {"when": "after the wait"}, "$.french", None),
                        },
                    },
                    {
                        "StartAt": "Run SFT training job",
                        "States": {
                            "Run SFT training job": training_job_state(instance_type),
                            "Job failed": {"Type": "Pass", "End": True},
                        },
                    },
                ],
                "ResultPath": "$.branches",
                "Next": "Check the budget",
            },
            "Check the budget": _invoke(
                "FailArn",
                {"budget": 5},
                "$.budget",
                "Done",
                Catch=[{"ErrorEquals": ["QuotaBreached"], "ResultPath": "$.budgetError", "Next": "Done"}],
            ),
            "Done": {"Type": "Succeed"},
        },
    }


def _role(service: str) -> dict:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": service}}],
            }
        },
    }


def _function(handler: str, environment: dict) -> dict:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Handler": f"{HANDLERS}.{handler}",
            "Runtime": "python3.14",
            "Timeout": 30,
            "MemorySize": 256,
            "Role": {"Fn::GetAtt": ["FunctionRole1A2B3C4D", "Arn"]},
            "Environment": {"Variables": environment},
        },
    }


def template(instance_type: str = "ml.p5.48xlarge") -> dict:
    asl = json.dumps(definition(instance_type), indent=1)
    head, tail = asl.split('"bridge fixture"')
    return {
        "Resources": {
            "StorageDataBucket1A2B3C4D": {"Type": "AWS::S3::Bucket", "Properties": {}},
            "StorageArtifactsBucket1A2B3C4D": {"Type": "AWS::S3::Bucket", "Properties": {}},
            "FunctionRole1A2B3C4D": _role("lambda.amazonaws.com"),
            "SageMakerRole1A2B3C4D": _role("sagemaker.amazonaws.com"),
            "MachineRole1A2B3C4D": _role("states.amazonaws.com"),
            "GreetEnglish1A2B3C4D": _function("greet", {"GREETING": "hello"}),
            "GreetFrench1A2B3C4D": _function("greet", {"GREETING": "bonjour"}),
            "Nested1A2B3C4D": _function(
                "nested", {"GREETING": "nested", "TARGET": {"Fn::GetAtt": ["GreetFrench1A2B3C4D", "Arn"]}}
            ),
            "Fail1A2B3C4D": _function("fail", {}),
            "StateMachine1A2B3C4D": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": {"Fn::GetAtt": ["MachineRole1A2B3C4D", "Arn"]},
                    # CDK joins tokens into the definition string; the rehearsal resolves the join first.
                    "DefinitionString": {"Fn::Join": ["", [head, '"bridge fixture"', tail]]},
                    "DefinitionSubstitutions": {
                        "GreetEnglishArn": {"Fn::GetAtt": ["GreetEnglish1A2B3C4D", "Arn"]},
                        "GreetFrenchArn": {"Fn::GetAtt": ["GreetFrench1A2B3C4D", "Arn"]},
                        "NestedArn": {"Fn::GetAtt": ["Nested1A2B3C4D", "Arn"]},
                        "FailArn": {"Fn::GetAtt": ["Fail1A2B3C4D", "Arn"]},
                        "SageMakerRoleArn": {"Fn::GetAtt": ["SageMakerRole1A2B3C4D", "Arn"]},
                    },
                },
            },
        }
    }


def fixture_synthesized(tmp: Path, instance_type: str = "ml.p5.48xlarge") -> Synthesized:
    return Synthesized(outdir=tmp, template_json=template(instance_type))


DATA_BUCKET = "novacustomization-storagedatabucket-sim"
ARTIFACTS_BUCKET = "novacustomization-storageartifactsbucket-sim"


def fixture_input(job_name: str = "fixture-sft-a1") -> dict:
    return {
        "who": "rehearsal",
        "jobName": job_name,
        "data": f"s3://{DATA_BUCKET}/datasets/rehearsal/sft.jsonl",
        "output": f"s3://{ARTIFACTS_BUCKET}/runs/fixture/jobs",
    }
