"""The offline AWS kit (offline/) on its own: shape checks, rendering, walking, the Lambda context, archives."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import pytest

from offline.archive import tar_gz
from offline.asl import RenderError, iter_states, render_definition, successors, walk_states
from offline.lambda_context import FakeLambdaContext
from offline.shapes import definition_problems, operation_of, request_problems, task_problems

JOB = "arn:aws:states:::sagemaker:createTrainingJob.sync"


def _job(**parameters: object) -> dict:
    base = {
        "TrainingJobName.$": "$.name",
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "OutputDataConfig": {"S3OutputPath.$": "$.out"},
    }
    return {"Type": "Task", "Resource": JOB, "Parameters": {**base, **parameters}}


def test_numbers_outside_the_shapes_range_are_reported() -> None:
    problems = task_problems("Job", _job(StoppingCondition={"MaxRuntimeInSeconds": 0}))
    assert problems == ["Job.Parameters.StoppingCondition.MaxRuntimeInSeconds: 0 is out of range [1, -]"]
    assert task_problems("Job", _job(StoppingCondition={"MaxRuntimeInSeconds": 3600})) == []


def test_a_path_key_must_hold_a_path_and_a_literal_key_a_literal() -> None:
    problems = task_problems("Job", _job(**{"HyperParameters.$": "not a path"}))
    assert problems == ["Job.Parameters.HyperParameters.$: 'not a path' is not a path or intrinsic function"]
    assert any("expected a map" in p for p in task_problems("Job", _job(HyperParameters="$.h")))


def test_a_names_only_check_ignores_values_but_not_names() -> None:
    document: dict[str, Any] = {
        "StartAt": "Job",
        "States": {"Job": _job(ResourceConfig={"InstanceType": "ml.nope", "InstanceCont": 1})},
    }
    document["States"]["Job"]["End"] = True
    full = definition_problems(document)
    assert any("'ml.nope' is not one of TrainingInstanceType's" in p for p in full)
    assert definition_problems(document, names_only=True) == [
        "Job.Parameters.ResourceConfig.InstanceCont: not a member of ResourceConfig (members: "
        + ", ".join(_members("ResourceConfig"))
        + ")"
    ]


def _members(shape: str) -> list[str]:
    from offline.shapes import operation_model

    return list(operation_model("sagemaker", "CreateTrainingJob").input_shape.members[shape].members)


def test_requests_are_checked_with_the_same_rules() -> None:
    assert request_problems("bedrock", "GetCustomModel", {"modelIdentifier": "m" * 3000}) == [
        "params.modelIdentifier: 3000 characters, valid length [1, 2048]"
    ]
    # Lambda's Payload is JSON in a definition and bytes in a request: both pass
    assert request_problems("lambda", "Invoke", {"FunctionName": "f", "Payload": {"any": "json"}}) == []


def test_aws_sdk_integrations_write_members_with_a_capital_first_letter() -> None:
    state = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:bedrock:getCustomModel"}
    assert task_problems("Get", {**state, "Parameters": {"ModelIdentifier.$": "$.model.arn"}}) == []
    assert task_problems("Get", {**state, "Parameters": {"modelIdentifier.$": "$.model.arn"}}) == [
        "Get.Parameters.modelIdentifier: not a member of GetCustomModelRequest (members: ModelIdentifier)",
        "Get.Parameters: required member ModelIdentifier of GetCustomModelRequest is missing",
    ]


def test_integrations_name_their_botocore_operation() -> None:
    assert operation_of(JOB) == ("sagemaker", "CreateTrainingJob")
    assert operation_of("arn:aws:states:::states:startExecution.sync:2") == ("stepfunctions", "StartExecution")
    assert operation_of("arn:aws-us-gov:states:::aws-sdk:bedrock:getCustomModel") == ("bedrock", "GetCustomModel")
    with pytest.raises(ValueError, match="not a service integration"):
        operation_of("arn:aws:lambda:us-east-1:123456789012:function:f")


def test_rendering_substitutes_every_placeholder_and_refuses_a_missing_one() -> None:
    text = json.dumps({"Comment": "prose ${...} stays", "Resource": "${FnArn}", "Other": "${FnArn}:$LATEST"})
    rendered = json.loads(render_definition(text, {"FnArn": "arn:f"}))
    assert rendered == {"Comment": "prose ${...} stays", "Resource": "arn:f", "Other": "arn:f:$LATEST"}
    with pytest.raises(RenderError, match="without a substitution: FnArn"):
        render_definition(text, {})


def test_the_walk_visits_parallel_branches_and_map_processors_in_order() -> None:
    leaf = {"Type": "Pass", "End": True}
    definition: dict[str, Any] = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "A", "States": {"A": leaf}}, {"StartAt": "B", "States": {"B": leaf}}],
                "Next": "M",
            },
            "M": {"Type": "Map", "ItemProcessor": {"StartAt": "C", "States": {"C": leaf}}, "End": True},
        },
    }
    assert [(depth, name) for depth, name, _ in walk_states(definition)] == [
        (0, "P"),
        (1, "A"),
        (1, "B"),
        (0, "M"),
        (1, "C"),
    ]
    assert [name for name, _ in iter_states(definition)] == ["P", "A", "B", "M", "C"]
    assert successors(definition["States"]["P"]) == ["M"]


def test_the_lambda_context_has_a_remaining_time_only_with_a_timeout() -> None:
    plain = FakeLambdaContext("f")
    assert not hasattr(plain, "get_remaining_time_in_millis")
    assert plain.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:f"
    assert plain.log_group_name == "/aws/lambda/f"
    timed = FakeLambdaContext("f", timeout_seconds=30)
    assert 29_000 < timed.get_remaining_time_in_millis() <= 30_000


def test_archives_hold_their_members_in_order() -> None:
    data = tar_gz({"manifest.json": b"{}", "eval/results_1.json": b'{"a": 1}'})
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        assert archive.getnames() == ["manifest.json", "eval/results_1.json"]
        member = archive.extractfile("eval/results_1.json")
        assert member is not None
        assert member.read() == b'{"a": 1}'


def _role_template(*statements: dict, trust_condition: dict | None = None) -> dict:
    trust: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": "bedrock.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    if trust_condition:
        trust["Condition"] = trust_condition
    return {
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": [trust]}}},
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"Roles": [{"Ref": "Role"}], "PolicyDocument": {"Statement": list(statements)}},
            },
        }
    }


def test_arns_match_component_by_component_with_wildcards_inside_each() -> None:
    from offline.iam import arn_matches

    model = "arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-2-lite-v1:0"
    assert arn_matches("arn:aws:bedrock:*::foundation-model/amazon.nova-*", model)
    # a wildcard region matches the region-less ARN a global inference profile routes to
    assert arn_matches(
        "arn:aws:bedrock:*::foundation-model/amazon.nova-*",
        "arn:aws:bedrock:::foundation-model/amazon.nova-2-lite-v1:0",
    )
    assert not arn_matches("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-*", model)
    # a wildcard stays inside its component: it cannot swallow the account
    assert not arn_matches("arn:aws:bedrock:*:foundation-model/*", model)
    assert not arn_matches("arn:aws:bedrock:*::foundation-model/Amazon.nova-*", model)  # case-sensitive
    assert arn_matches("*", model)


def test_an_allow_needs_action_resource_and_every_condition_and_a_deny_wins() -> None:
    from offline.iam import RolePolicies

    objects = {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket", "Arn"]}, "/runs/*/jobs/*/*"]]}
    template = _role_template(
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": objects},
        {
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}},
        },
        {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::bucket/runs/denied/*"},
    )
    role = RolePolicies(template, "Role")
    assert role.arn == "arn:aws:iam::123456789012:role/Role"
    assert role.allows("S3:PutObject", "arn:aws:s3:::bucket/runs/r1/jobs/sft/job/output.json")  # actions: any case
    assert not role.allows("s3:PutObject", "arn:aws:s3:::bucket/runs/r1/inputs/sft/train.jsonl")
    assert not role.allows("s3:GetObject", "arn:aws:s3:::bucket/runs/r1/jobs/sft/job/output.json")
    assert not role.allows("s3:PutObject", "arn:aws:s3:::bucket/runs/denied/jobs/sft/job/output.json")
    assert role.allows("iam:PassRole", "arn:aws:iam::1:role/x", **{"iam:PassedToService": "bedrock.amazonaws.com"})
    assert not role.allows("iam:PassRole", "arn:aws:iam::1:role/x", **{"iam:PassedToService": "ec2.amazonaws.com"})
    assert not role.allows("iam:PassRole", "arn:aws:iam::1:role/x")  # a key the request lacks fails


def test_trust_checks_the_service_and_its_source_conditions() -> None:
    from offline.iam import RolePolicies

    jobs = "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/*"
    role = RolePolicies(
        _role_template(
            trust_condition={
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                "ArnLike": {"aws:SourceArn": jobs},
            }
        ),
        "Role",
    )
    job = "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-2-lite-v1:0:256k/abcdefghijkl"
    assert role.trusts("bedrock.amazonaws.com", **{"aws:SourceAccount": "123456789012", "aws:SourceArn": job})
    assert not role.trusts("bedrock.amazonaws.com", **{"aws:SourceAccount": "999999999999", "aws:SourceArn": job})
    evaluation = "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/abcdefghijkl"
    assert not role.trusts(
        "bedrock.amazonaws.com", **{"aws:SourceAccount": "123456789012", "aws:SourceArn": evaluation}
    )
    assert not role.trusts("sagemaker.amazonaws.com", **{"aws:SourceAccount": "123456789012", "aws:SourceArn": job})


def test_what_the_evaluator_does_not_know_raises_instead_of_judging() -> None:
    from offline.iam import RolePolicies, UnsupportedPolicy

    unknown_operator = _role_template(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"IpAddress": {"x": "y"}}}
    )
    with pytest.raises(UnsupportedPolicy, match="IpAddress"):
        RolePolicies(unknown_operator, "Role").allows("s3:GetObject", "arn:aws:s3:::b/k", x="y")
    not_action = _role_template({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"})
    with pytest.raises(UnsupportedPolicy, match="NotAction"):
        RolePolicies(not_action, "Role").allows("s3:GetObject", "arn:aws:s3:::b/k")
