"""IAM of the bedrock platform: the customization role, the state machine's Bedrock customization jobs, the
functions' Bedrock calls, the graders' permission for Bedrock RFT; cdk-nag passes on all of it.

The customization role, the graders and the functions the catalogue defines are checked in the app as it
synthesizes. What the state machine may do with customization jobs is derived from the definition's tasks, and
EvaluateOnBedrock's grants from the function catalogue, so those are checked on the app synthesized (cdk-nag
included) with ``createModelCustomizationJob.sync`` among the definition's integrations and EvaluateOnBedrock
(handler ``evaluate_on_bedrock``, 15 minutes) in the catalogue, whichever of the two the definition still lacks.
"""

from __future__ import annotations

import re
from typing import Any

import botocore.session
import pytest

from offline import ACCOUNT as ACCOUNT_ID
from offline.iam import RolePolicies
from offline.synth import Synthesized, synthesize_into
from stepfunctions import pipeline as workflow
from tests.infrastructure.test_pipeline import (
    _actions,
    _as_list,
    _function_statements,
    _functions,
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
        if f["Properties"]["Handler"] == "lambdas.pipeline.handlers.evaluate_on_bedrock"
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
    synthesized: Synthesized,
) -> None:
    statements = _state_machine_statements(synthesized)
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


def test_the_state_machine_passes_only_the_customization_role_to_bedrock(synthesized: Synthesized) -> None:
    resources = synthesized.template_json["Resources"]
    to_bedrock = [
        s
        for s in _with_action(_state_machine_statements(synthesized), "iam:PassRole")
        if s["Condition"] == {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}
    ]
    (statement,) = to_bedrock
    customization_role = _customization_role(synthesized)
    assert statement["Resource"] == {"Fn::GetAtt": [customization_role, "Arn"]}
    # the role the definition's customization jobs name (RoleArn = ${BedrockCustomizationRoleArn})
    substitutions = _state_machine(synthesized)["Properties"]["DefinitionSubstitutions"]
    assert substitutions["BedrockCustomizationRoleArn"] == {"Fn::GetAtt": [customization_role, "Arn"]}
    assert resources[customization_role]["Type"] == "AWS::IAM::Role"


def test_the_bedrock_evaluation_deploys_invokes_nova_and_custom_models_and_writes_only_job_outputs(
    synthesized: Synthesized,
) -> None:
    statements = _statements_of_role(synthesized, _evaluation(synthesized)["Role"]["Fn::GetAtt"][0])
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
        for name, f in synthesized.resources("AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == "lambdas.reward.handler.lambda_handler"
    }
    assert {r["Fn::GetAtt"][0] for r in _resources(statements, "lambda:InvokeFunction")} == graders
    assert _object_patterns(statements, "s3:GetObject") == {"/runs/*"}
    assert _object_patterns(statements, "s3:PutObject") == {"/runs/*/jobs/*/*"}
    # a custom model encrypted with the project key is invoked with kms:Decrypt, never a new grant
    assert not _actions(statements) & {"kms:CreateGrant", "kms:DescribeKey", "iam:PassRole"}


def test_the_bedrock_evaluation_is_a_fifteen_minute_function(synthesized: Synthesized) -> None:
    assert _evaluation(synthesized)["Timeout"] == 900


def test_a_bedrock_integration_without_a_permission_mapping_fails_synthesis(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    real = workflow.task_integrations

    def with_invoke_model(document: Any) -> dict[str, set[str]]:
        return {**real(document), "arn:aws:states:::bedrock:invokeModel": set()}

    monkeypatch.setattr("stacks.pipeline.task_integrations", with_invoke_model)
    with pytest.raises(ValueError, match=r"pipeline\.asl\.json calls \['arn:aws:states:::bedrock:invokeModel'\]"):
        synthesize_into(tmp_path)


# Requests as Bedrock presents them: every ARN has the form botocore's bedrock model gives its shape.
BEDROCK_MODEL = botocore.session.get_session().get_service_model("bedrock")


def _arn(shape: str, arn: str) -> str:
    assert re.fullmatch(BEDROCK_MODEL.shape_for(shape).metadata["pattern"], arn), (shape, arn)
    return arn


NOVA_2_LITE = "amazon.nova-2-lite-v1:0:256k"  # what CreateModelCustomizationJob takes (lambdas/pipeline/catalog.py)
JOB = _arn(
    "ModelCustomizationJobArn",
    f"arn:aws:bedrock:us-east-1:{ACCOUNT_ID}:model-customization-job/{NOVA_2_LITE}/a1b2c3d4e5f6",
)
CUSTOM_MODEL = _arn("CustomModelArn", f"arn:aws:bedrock:us-east-1:{ACCOUNT_ID}:custom-model/{NOVA_2_LITE}/a1b2c3d4e5f6")
BASE_MODEL = _arn("FoundationModelArn", f"arn:aws:bedrock:us-east-1::foundation-model/{NOVA_2_LITE}")
OTHER_MODEL = _arn(
    "FoundationModelArn", "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
)
DEPLOYMENT = _arn(
    "CustomModelDeploymentArn", f"arn:aws:bedrock:us-east-1:{ACCOUNT_ID}:custom-model-deployment/z9y8x7w6v5u4"
)
# Converse on the base model: Nova 2 Lite through its US or global inference profile, Nova 1 models directly.
US_PROFILE = _arn(
    "InferenceProfileArn", f"arn:aws:bedrock:us-east-1:{ACCOUNT_ID}:inference-profile/us.amazon.nova-2-lite-v1:0"
)
GLOBAL_PROFILE = _arn(
    "InferenceProfileArn", f"arn:aws:bedrock:us-east-1:{ACCOUNT_ID}:inference-profile/global.amazon.nova-2-lite-v1:0"
)
OTHER_PROFILE = _arn(
    "InferenceProfileArn", f"arn:aws:bedrock:us-east-1:{ACCOUNT_ID}:inference-profile/us.anthropic.claude-3-haiku-v1:0"
)
NOVA_LITE = _arn("FoundationModelArn", "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0")
ROUTED = _arn("FoundationModelArn", "arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-2-lite-v1:0")
ROUTED_GLOBALLY = "arn:aws:bedrock:::foundation-model/amazon.nova-2-lite-v1:0"
RUN = "nova-20261130-ab12cd34"


def _role_of(synthesized: Synthesized, logical_id: str) -> RolePolicies:
    return RolePolicies(synthesized.template_json, logical_id)


def _artifacts(synthesized: Synthesized) -> str:
    (bucket,) = [name for name in synthesized.resources("AWS::S3::Bucket") if "ArtifactsBucket" in name]
    return f"arn:aws:s3:::{bucket.lower()}"


def test_the_customization_role_allows_a_job_its_run_data_outputs_and_graders_and_nothing_beside(
    synthesized: Synthesized,
) -> None:
    role = _role_of(synthesized, _customization_role(synthesized))
    assert role.trusts("bedrock.amazonaws.com", **{"aws:SourceAccount": ACCOUNT_ID, "aws:SourceArn": JOB})
    assert not role.trusts("bedrock.amazonaws.com", **{"aws:SourceAccount": "210987654321", "aws:SourceArn": JOB})
    other_job = JOB.replace(ACCOUNT_ID, "210987654321")
    assert not role.trusts("bedrock.amazonaws.com", **{"aws:SourceAccount": ACCOUNT_ID, "aws:SourceArn": other_job})
    batch = f"arn:aws:bedrock:us-east-1:{ACCOUNT_ID}:model-invocation-job/a1b2c3d4e5f6"
    assert not role.trusts("bedrock.amazonaws.com", **{"aws:SourceAccount": ACCOUNT_ID, "aws:SourceArn": batch})
    artifacts = _artifacts(synthesized)
    assert role.allows("s3:GetObject", f"{artifacts}/runs/{RUN}/inputs/rft/train.jsonl")
    assert role.allows("s3:ListBucket", artifacts, **{"s3:prefix": f"runs/{RUN}/inputs/rft/"})
    assert role.allows("s3:PutObject", f"{artifacts}/runs/{RUN}/jobs/rft/nova-rft-1/a1b2c3d4e5f6/step_100.json")
    assert not role.allows("s3:PutObject", f"{artifacts}/runs/{RUN}/inputs/rft/train.jsonl")
    assert not role.allows("s3:PutObject", f"{artifacts}/runs/{RUN}/run.json")
    assert not role.allows("s3:GetObject", f"{artifacts}/champions/nova.json")
    (grader,) = [
        name
        for name, f in synthesized.resources("AWS::Lambda::Function").items()
        if f["Properties"]["Environment"]["Variables"].get("GRADER_PRESET") == "classification"
    ]
    assert role.allows("lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{grader}")
    assert not role.allows("bedrock:InvokeModel", BASE_MODEL)


def test_the_state_machine_allows_the_customization_jobs_of_nova_models_with_that_role_only(
    synthesized: Synthesized,
) -> None:
    machine = _role_of(synthesized, _state_machine(synthesized)["Properties"]["RoleArn"]["Fn::GetAtt"][0])
    for resource in (BASE_MODEL, CUSTOM_MODEL, JOB):
        assert machine.allows("bedrock:CreateModelCustomizationJob", resource), resource
    assert not machine.allows("bedrock:CreateModelCustomizationJob", OTHER_MODEL)
    for action in ("bedrock:GetModelCustomizationJob", "bedrock:StopModelCustomizationJob", "bedrock:TagResource"):
        assert machine.allows(action, JOB), action
    assert machine.allows("bedrock:TagResource", CUSTOM_MODEL)
    customization = RolePolicies(synthesized.template_json, _customization_role(synthesized)).arn
    to_bedrock = {"iam:PassedToService": "bedrock.amazonaws.com"}
    assert machine.allows("iam:PassRole", customization, **to_bedrock)
    assert not machine.allows("iam:PassRole", customization, **{"iam:PassedToService": "sagemaker.amazonaws.com"})
    others = [name for name in synthesized.resources("AWS::IAM::Role") if name != _customization_role(synthesized)]
    assert not [
        name
        for name in others
        if machine.allows("iam:PassRole", f"arn:aws:iam::{ACCOUNT_ID}:role/{name}", **to_bedrock)
    ]
    (key,) = synthesized.resources("AWS::KMS::Key")
    key_arn = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/{key}"
    assert machine.allows("kms:CreateGrant", key_arn, **{"kms:ViaService": "bedrock.us-east-1.amazonaws.com"})
    assert not machine.allows("kms:CreateGrant", key_arn, **{"kms:ViaService": "s3.us-east-1.amazonaws.com"})


def test_the_bedrock_evaluation_allows_converse_on_nova_through_this_accounts_profiles_only(
    synthesized: Synthesized,
) -> None:
    evaluation = _role_of(synthesized, _evaluation(synthesized)["Role"]["Fn::GetAtt"][0])
    for resource in (US_PROFILE, GLOBAL_PROFILE, NOVA_LITE, DEPLOYMENT):
        assert evaluation.allows("bedrock:InvokeModel", resource), resource
    # where a profile routes the request: allowed through one of this account's Nova profiles only
    assert evaluation.allows("bedrock:InvokeModel", ROUTED, **{"bedrock:InferenceProfileArn": US_PROFILE})
    assert evaluation.allows("bedrock:InvokeModel", ROUTED_GLOBALLY, **{"bedrock:InferenceProfileArn": GLOBAL_PROFILE})
    assert not evaluation.allows("bedrock:InvokeModel", ROUTED)
    assert not evaluation.allows("bedrock:InvokeModel", ROUTED, **{"bedrock:InferenceProfileArn": OTHER_PROFILE})
    for resource in (OTHER_MODEL, OTHER_PROFILE):
        assert not evaluation.allows("bedrock:InvokeModel", resource), resource
    for action in ("bedrock:CreateCustomModelDeployment", "bedrock:TagResource"):
        assert evaluation.allows(action, CUSTOM_MODEL) and evaluation.allows(action, DEPLOYMENT), action
    assert not evaluation.allows("bedrock:CreateModelCustomizationJob", JOB)


def test_the_job_functions_may_read_and_stop_a_customization_job(synthesized: Synthesized) -> None:
    functions = _functions(synthesized)
    resolve, prepare = (
        _role_of(synthesized, functions[handler]["Properties"]["Role"]["Fn::GetAtt"][0])
        for handler in ("resolve_checkpoint", "prepare_job")
    )
    assert resolve.allows("bedrock:GetModelCustomizationJob", JOB)
    assert not resolve.allows("bedrock:StopModelCustomizationJob", JOB)
    assert prepare.allows("bedrock:StopModelCustomizationJob", JOB)


def test_the_notify_function_stops_this_accounts_customization_jobs_and_deletes_its_deployments_only(
    synthesized: Synthesized,
) -> None:
    # An unfinished Bedrock-road run: its customization job in progress is stopped, its provisional deployments
    # deleted (lambdas/notify/service.py); nothing else of Bedrock, nowhere else.
    (role_id,) = [
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "lambdas.notify.handler.lambda_handler"
    ]
    notify = _role_of(synthesized, role_id)
    assert {a for s in notify.statements() for a in _as_list(s["Action"]) if a.startswith("bedrock:")} == {
        "bedrock:GetModelCustomizationJob",
        "bedrock:StopModelCustomizationJob",
        "bedrock:DeleteCustomModelDeployment",
    }
    for action in ("bedrock:GetModelCustomizationJob", "bedrock:StopModelCustomizationJob"):
        assert notify.allows(action, JOB), action
        assert not notify.allows(action, JOB.replace(ACCOUNT_ID, "210987654321")), action
        assert not notify.allows(action, JOB.replace("us-east-1", "eu-west-1")), action
        assert not notify.allows(action, DEPLOYMENT), action
    assert notify.allows("bedrock:DeleteCustomModelDeployment", DEPLOYMENT)
    assert not notify.allows("bedrock:DeleteCustomModelDeployment", DEPLOYMENT.replace(ACCOUNT_ID, "210987654321"))
    assert not notify.allows("bedrock:DeleteCustomModelDeployment", DEPLOYMENT.replace("us-east-1", "eu-west-1"))
    for action in ("bedrock:DeleteCustomModel", "bedrock:CreateCustomModelDeployment", "bedrock:InvokeModel"):
        assert not notify.allows(action, CUSTOM_MODEL) and not notify.allows(action, DEPLOYMENT), action
