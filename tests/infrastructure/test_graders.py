"""Graders: one reward function per preset, arm64, SageMaker in the name, explicit invoke grants."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Match, Template

from lambdas.reward.presets import list_graders
from offline.synth import Synthesized
from stacks.graders import Graders, judge_model_ids


def _grader_functions(synthesized: Synthesized) -> dict[str, dict]:
    return {
        k: v
        for k, v in synthesized.resources("AWS::Lambda::Function").items()
        if v["Properties"]["Handler"] == "lambdas.reward.handler.lambda_handler"
    }


def test_one_grader_function_per_shipped_preset_and_custom_module(synthesized: Synthesized) -> None:
    presets = {
        f["Properties"]["Environment"]["Variables"]["GRADER_PRESET"] for f in _grader_functions(synthesized).values()
    }
    assert presets == set(list_graders())
    assert {"classification", "numeric", "tool-calling"} <= presets


def test_grader_logical_ids_start_with_sagemaker_so_generated_names_contain_it(synthesized: Synthesized) -> None:
    for logical_id, function in _grader_functions(synthesized).items():
        assert logical_id.startswith("SageMaker"), logical_id
        assert "FunctionName" not in function["Properties"]  # no hard-coded physical name


def test_grader_functions_run_on_arm64_with_a_current_python_and_room_for_the_judge(template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambdas.reward.handler.lambda_handler",
            "Architectures": ["arm64"],
            "Runtime": "python3.14",
            "Timeout": 300,
            "MemorySize": 1769,
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": Match.object_like({"LogFormat": "JSON"}),
        },
    )


def test_sagemaker_role_and_bedrock_may_invoke_the_graders(synthesized: Synthesized, template) -> None:
    graders = _grader_functions(synthesized)
    for logical_id in graders:
        template.has_resource_properties(
            "AWS::Lambda::Permission",
            {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Fn::GetAtt": [logical_id, "Arn"]},
                "Principal": "bedrock.amazonaws.com",
                "SourceAccount": {"Ref": "AWS::AccountId"},
                # this account's model customization jobs only, not any Bedrock caller of the account
                "SourceArn": {
                    "Fn::Join": [
                        "",
                        ["arn:aws:bedrock:us-east-1:", {"Ref": "AWS::AccountId"}, ":model-customization-job/*"],
                    ]
                },
            },
        )
    sagemaker_role = next(
        name
        for name, role in synthesized.resources("AWS::IAM::Role").items()
        if role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"].get("Service")
        == "sagemaker.amazonaws.com"
    )
    invokable = set()
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        if {"Ref": sagemaker_role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Action"] == "lambda:InvokeFunction":
                for resource in statement["Resource"]:
                    ref = resource.get("Fn::GetAtt", [None])[0] or resource["Fn::Join"][1][0]["Fn::GetAtt"][0]
                    invokable.add(ref)
    assert invokable == set(graders)


def test_a_judge_preset_gets_invoke_model_on_its_judge_only(tmp_path, monkeypatch) -> None:
    # Given a preset whose weighted spec nests an LLM judge on a cross-region profile
    spec = {
        "type": "weighted",
        "graders": {
            "label": {"weight": 0.5, "grader": {"type": "label", "labels": ["A", "B"]}},
            "judge": {
                "weight": 0.5,
                "grader": {"type": "llm_judge", "model_id": "us.amazon.nova-pro-v1:0", "rubric": "Is it right?"},
            },
        },
    }
    assert list(judge_model_ids(spec)) == ["us.amazon.nova-pro-v1:0"]
    from lambdas.reward import presets as preset_module

    monkeypatch.setattr(
        "stacks.graders.load_grader",
        lambda name: preset_module.Preset(name, "1", "judge", spec),
    )
    stack = Stack(App(), "Judge")
    role = iam.Role(stack, "SageMakerRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    Graders(stack, "SageMakerGraders", invokers=[role], log_retention=logs.RetentionDays.ONE_WEEK, presets=["judge"])
    # Then its role may invoke exactly that profile and the models behind it
    Template.from_stack(stack).has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "bedrock:InvokeModel",
                                "Resource": Match.array_with(
                                    ["arn:aws:bedrock:*::foundation-model/amazon.nova-pro-v1:0"]
                                ),
                            }
                        )
                    ]
                )
            }
        },
    )


def test_a_broken_preset_fails_synthesis(monkeypatch) -> None:
    from lambdas.reward import presets as preset_module
    from lambdas.reward.spec import SpecError

    monkeypatch.setattr(
        "stacks.graders.load_grader",
        lambda name: preset_module.Preset(name, "1", "broken", {"type": "label", "labels": []}),
    )
    stack = Stack(App(), "Broken")
    role = iam.Role(stack, "SageMakerRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    with pytest.raises(SpecError):
        Graders(
            stack,
            "SageMakerGraders",
            invokers=[role],
            log_retention=logs.RetentionDays.ONE_WEEK,
            presets=["broken"],
        )


def _custom_grader_stack(monkeypatch, layers_dir, requirements) -> Stack:
    from lambdas.reward import presets as preset_module

    spec = {"type": "python", "module": "mine"}
    monkeypatch.setattr("stacks.graders.compile_spec", lambda spec, name: None)
    monkeypatch.setattr("stacks.graders.load_grader", lambda name: preset_module.Preset(name, "1", "custom", spec))
    monkeypatch.setattr("stacks.graders.requirements_file", lambda name: requirements)
    monkeypatch.setattr("stacks.graders.CUSTOM_LAYERS_DIR", layers_dir)
    stack = Stack(App(), "Custom")
    role = iam.Role(stack, "SageMakerRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    Graders(stack, "SageMakerGraders", invokers=[role], log_retention=logs.RetentionDays.ONE_WEEK, presets=["mine"])
    return stack


def test_a_custom_module_with_requirements_gets_its_own_layer(tmp_path, monkeypatch) -> None:
    from stacks.lambda_defaults import REPO_ROOT

    # Given a custom module whose requirements `make layer` installed into .build/custom/<module>/python
    (tmp_path / "mine" / "python" / "somepackage").mkdir(parents=True)
    requirements = REPO_ROOT / "lambdas" / "reward" / "custom" / "mine.requirements.txt"
    template = Template.from_stack(_custom_grader_stack(monkeypatch, tmp_path, requirements))
    # Then its function has the shared layer and a layer of its own, for the same runtime and architecture
    layers = template.find_resources("AWS::Lambda::LayerVersion")
    own = [layer for layer in layers.values() if "custom grader module mine" in layer["Properties"]["Description"]]
    assert len(own) == 1
    assert own[0]["Properties"]["CompatibleArchitectures"] == ["arm64"]
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    assert len(function["Properties"]["Layers"]) == 2
    assert function["Properties"]["Environment"]["Variables"]["GRADER_PRESET"] == "mine"


def test_a_custom_module_whose_requirements_are_not_built_stops_synthesis(tmp_path, monkeypatch) -> None:
    from stacks.lambda_defaults import REPO_ROOT, LayerNotBuiltError

    requirements = REPO_ROOT / "lambdas" / "reward" / "custom" / "mine.requirements.txt"
    with pytest.raises(LayerNotBuiltError, match=r"run `make layer`.*lambdas/reward/custom/mine.requirements.txt"):
        _custom_grader_stack(monkeypatch, tmp_path, requirements)
