"""IAM of the bedrock platform: the customization role, the state machine's Bedrock customization jobs, the
functions' Bedrock calls, the graders' permission for Bedrock RFT; cdk-nag passes on all of it.

The customization role, the graders and the functions the catalogue defines are checked in the app as it
synthesizes. What the state machine may do with customization jobs is derived from the definition's tasks, and
EvaluateOnBedrock's grants from the function catalogue, so those are checked on the app synthesized (cdk-nag
included) with ``createModelCustomizationJob.sync`` among the definition's integrations and EvaluateOnBedrock
(handler ``evaluate_on_bedrock``, 15 minutes) in the catalogue, whichever of the two the definition still lacks.
"""

from __future__ import annotations

from typing import Any

import pytest

from offline.synth import Synthesized, synthesize_into
from stepfunctions import pipeline as workflow
from tests.infrastructure.conftest import EVALUATE_ON_BEDROCK
from tests.infrastructure.test_pipeline import (
    _actions,
    _as_list,
    _function_statements,
    _join,
    _state_machine,
    _state_machine_statements,
    _statements_of_role,
    _with_action,
)

ACCOUNT = {"Ref": "AWS::AccountId"}
REGION = {"Ref": "AWS::Region"}
CUSTOMIZATION_JOBS = _join("arn:aws:bedrock:us-east-1:", ACCOUNT, ":model-customization-job/*")
CUSTOM_MODELS = _join("arn:aws:bedrock:", REGION, ":", ACCOUNT, ":custom-model/*")
DEPLOYMENTS = _join("arn:aws:bedrock:", REGION, ":", ACCOUNT, ":custom-model-deployment/*")
NOVA_MODELS = _join("arn:aws:bedrock:", REGION, "::foundation-model/amazon.nova-*")
NOVA_PROFILES = _join("arn:aws:bedrock:", REGION, ":", ACCOUNT, ":inference-profile/*amazon.nova-*")
VIA_BEDROCK = {"StringEquals": {"kms:ViaService": _join("bedrock.", REGION, ".amazonaws.com")}}
KEY_BY_BEDROCK = {"kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"}


def _customization_role(synthesized: Synthesized) -> str:
    (role,) = [
        name
        for name, role in synthesized.resources("AWS::IAM::Role").items()
        if role["Properties"].get("Description")
        == "Runs Bedrock model customization jobs (SFT, RFT) of the bedrock platform"
    ]
    return role


def _evaluation(synthesized: Synthesized) -> dict:
    (function,) = [
        f["Properties"]
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == f"lambdas.pipeline.handlers.{EVALUATE_ON_BEDROCK.handler}"
    ]
    return function


def _bedrock_actions(statements: list[dict]) -> set[str]:
    return {a for a in _actions(statements) if a.startswith("bedrock:")}


def _resources(statements: list[dict], action: str) -> list:
    return sorted((r for s in _with_action(statements, action) for r in _as_list(s["Resource"])), key=str)


def _object_patterns(statements: list[dict], action: str) -> set[str]:
    return {r["Fn::Join"][1][-1] for r in _resources(statements, action) if "Fn::Join" in r}


def test_the_customization_role_trusts_bedrock_for_this_accounts_customization_jobs_only(
    synthesized: Synthesized,
) -> None:
    role = synthesized.template_json["Resources"][_customization_role(synthesized)]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "bedrock.amazonaws.com"},
            "Condition": {
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                "ArnLike": {"aws:SourceArn": CUSTOMIZATION_JOBS},
            },
        }
    ]


def test_the_customization_role_reads_the_run_inputs_writes_job_outputs_and_calls_the_graders(
    synthesized: Synthesized,
) -> None:
    statements = _statements_of_role(synthesized, _customization_role(synthesized))
    # the dataset copies preflight pinned under runs/<run>/inputs/, never the live datasets/; outputs under jobs/
    assert _object_patterns(statements, "s3:GetObject") == {"/runs/*/inputs/*/*", "/runs/*/jobs/*/*"}
    assert _object_patterns(statements, "s3:PutObject") == {"/runs/*/jobs/*/*"}
    (listing,) = _with_action(statements, "s3:ListBucket")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["runs/*"]}}
    (key,) = synthesized.resources("AWS::KMS::Key")
    (by_bedrock,) = _with_action(statements, "kms:CreateGrant")
    assert set(_as_list(by_bedrock["Action"])) == KEY_BY_BEDROCK
    assert by_bedrock["Resource"] == {"Fn::GetAtt": [key, "Arn"]} and by_bedrock["Condition"] == VIA_BEDROCK
    graders = {
        name
        for name, f in synthesized.resources("AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == "lambdas.reward.handler.lambda_handler"
    }
    assert {r["Fn::GetAtt"][0] for r in _resources(statements, "lambda:InvokeFunction")} == graders
    assert (
        _actions(statements)
        == {
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:ListBucket",
            "s3:PutObject",
            "s3:AbortMultipartUpload",
            "kms:Encrypt",
            "lambda:InvokeFunction",
        }
        | KEY_BY_BEDROCK
    )


def test_bedrock_rft_may_call_the_graders_only_for_this_accounts_customization_jobs(synthesized: Synthesized) -> None:
    permissions = [
        p["Properties"]
        for p in synthesized.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "bedrock.amazonaws.com"
    ]
    assert permissions
    for permission in permissions:
        assert permission["Action"] == "lambda:InvokeFunction"
        assert permission["SourceAccount"] == ACCOUNT and permission["SourceArn"] == CUSTOMIZATION_JOBS


@pytest.mark.parametrize(
    ("handler", "actions"),
    [
        ("resolve_checkpoint", {"bedrock:GetModelCustomizationJob"}),
        ("prepare_job", {"bedrock:GetModelCustomizationJob", "bedrock:StopModelCustomizationJob"}),
    ],
)
def test_the_job_functions_read_and_stop_only_customization_jobs(
    synthesized: Synthesized, handler: str, actions: set[str]
) -> None:
    statements = _function_statements(synthesized, handler)
    assert {a for a in _bedrock_actions(statements) if "ModelCustomizationJob" in a} == actions
    for action in actions:
        assert _resources(statements, action) == [CUSTOMIZATION_JOBS]


def test_the_state_machine_creates_watches_and_stops_customization_jobs_from_nova_or_custom_models(
    bedrock_road: Synthesized,
) -> None:
    statements = _state_machine_statements(bedrock_road)
    assert _bedrock_actions(statements) == {
        "bedrock:CreateModelCustomizationJob",
        "bedrock:GetModelCustomizationJob",
        "bedrock:StopModelCustomizationJob",
        "bedrock:TagResource",
    }
    assert _resources(statements, "bedrock:CreateModelCustomizationJob") == sorted(
        [NOVA_MODELS, CUSTOM_MODELS, CUSTOMIZATION_JOBS], key=str
    )
    assert _resources(statements, "bedrock:TagResource") == sorted([CUSTOM_MODELS, CUSTOMIZATION_JOBS], key=str)
    for action in ("bedrock:GetModelCustomizationJob", "bedrock:StopModelCustomizationJob"):
        assert _resources(statements, action) == [CUSTOMIZATION_JOBS]
    # Step Functions polls a Bedrock job: no EventBridge rule beyond the SageMaker integration's
    rules = _resources(statements, "events:PutRule")
    assert all("SageMaker" in str(rule) for rule in rules), rules
    # the custom model is encrypted with the project key on the state machine's behalf, only through Bedrock
    (by_bedrock,) = _with_action(statements, "kms:CreateGrant")
    assert set(_as_list(by_bedrock["Action"])) == KEY_BY_BEDROCK and by_bedrock["Condition"] == VIA_BEDROCK


def test_the_state_machine_passes_only_the_customization_role_to_bedrock(bedrock_road: Synthesized) -> None:
    resources = bedrock_road.template_json["Resources"]
    to_bedrock = [
        s
        for s in _with_action(_state_machine_statements(bedrock_road), "iam:PassRole")
        if s["Condition"] == {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}
    ]
    (statement,) = to_bedrock
    customization_role = _customization_role(bedrock_road)
    assert statement["Resource"] == {"Fn::GetAtt": [customization_role, "Arn"]}
    # the role the definition's customization jobs name (RoleArn = ${BedrockCustomizationRoleArn})
    substitutions = _state_machine(bedrock_road)["Properties"]["DefinitionSubstitutions"]
    assert substitutions["BedrockCustomizationRoleArn"] == {"Fn::GetAtt": [customization_role, "Arn"]}
    assert resources[customization_role]["Type"] == "AWS::IAM::Role"


def test_the_bedrock_evaluation_deploys_invokes_nova_and_custom_models_and_writes_only_job_outputs(
    bedrock_road: Synthesized,
) -> None:
    statements = _statements_of_role(bedrock_road, _evaluation(bedrock_road)["Role"]["Fn::GetAtt"][0])
    assert _bedrock_actions(statements) == {
        "bedrock:CreateCustomModelDeployment",
        "bedrock:GetCustomModelDeployment",
        "bedrock:DeleteCustomModelDeployment",
        "bedrock:TagResource",
        "bedrock:InvokeModel",
    }
    for action in ("bedrock:CreateCustomModelDeployment", "bedrock:DeleteCustomModelDeployment"):
        assert _resources(statements, action) == sorted([CUSTOM_MODELS, DEPLOYMENTS], key=str)
    invoke = _with_action(statements, "bedrock:InvokeModel")
    direct = [s for s in invoke if "Condition" not in s]
    routed = [s for s in invoke if "Condition" in s]
    assert _resources(direct, "bedrock:InvokeModel") == sorted([NOVA_MODELS, NOVA_PROFILES, DEPLOYMENTS], key=str)
    # the regions a Nova inference profile routes to, only through this account's Nova profiles
    (routed_statement,) = routed
    # a geographic profile routes to the model in other regions, a global one to the region-less model ARN
    assert sorted(routed_statement["Resource"]) == [
        "arn:aws:bedrock:*::foundation-model/amazon.nova-*",
        "arn:aws:bedrock:::foundation-model/amazon.nova-*",
    ]
    assert routed_statement["Condition"] == {"StringLike": {"bedrock:InferenceProfileArn": NOVA_PROFILES}}
    graders = {
        name
        for name, f in bedrock_road.resources("AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == "lambdas.reward.handler.lambda_handler"
    }
    assert {r["Fn::GetAtt"][0] for r in _resources(statements, "lambda:InvokeFunction")} == graders
    assert _object_patterns(statements, "s3:GetObject") == {"/runs/*"}
    assert _object_patterns(statements, "s3:PutObject") == {"/runs/*/jobs/*/*"}
    # a custom model encrypted with the project key is invoked with kms:Decrypt, never a new grant
    assert not _actions(statements) & {"kms:CreateGrant", "kms:DescribeKey", "iam:PassRole"}


def test_the_bedrock_evaluation_is_a_fifteen_minute_function(bedrock_road: Synthesized) -> None:
    assert _evaluation(bedrock_road)["Timeout"] == 900


def test_a_bedrock_integration_without_a_permission_mapping_fails_synthesis(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    real = workflow.task_integrations

    def with_invoke_model(document: Any) -> dict[str, set[str]]:
        return {**real(document), "arn:aws:states:::bedrock:invokeModel": set()}

    monkeypatch.setattr("stacks.pipeline.task_integrations", with_invoke_model)
    with pytest.raises(ValueError, match=r"pipeline\.asl\.json calls \['arn:aws:states:::bedrock:invokeModel'\]"):
        synthesize_into(tmp_path)
