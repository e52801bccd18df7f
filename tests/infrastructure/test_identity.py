"""Identity: trust policies, escrow access and least privilege across every policy in the stack."""

from __future__ import annotations

from aws_cdk.assertions import Match

from offline.synth import Synthesized

SOURCE_ACCOUNT = {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def _statements(synthesized: Synthesized):
    """Every statement of every identity policy and inline role policy, with where it came from."""
    for name, policy in synthesized.resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield name, statement
    for name, role in synthesized.resources("AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            for statement in inline["PolicyDocument"]["Statement"]:
                yield name, statement


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _role_named_by(synthesized: Synthesized, service: str, description: str = "") -> str:
    """The one role ``service`` may assume (whose description starts with ``description``, when it trusts several)."""
    roles = [
        name
        for name, role in synthesized.resources("AWS::IAM::Role").items()
        if any(
            s["Principal"].get("Service") == service
            for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        )
        and role["Properties"].get("Description", "").startswith(description)
    ]
    assert len(roles) == 1, roles
    return roles[0]


# Bedrock assumes two roles: the import role (CreateCustomModel) and the customization role (test_bedrock_iam.py).
IMPORT_ROLE = ("bedrock.amazonaws.com", "Lets Bedrock read Nova checkpoints")


def _policy_of(synthesized: Synthesized, role: str) -> list[dict]:
    return [
        s
        for p in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_service_roles_trust_one_service_on_behalf_of_this_account_only(template) -> None:
    for service in ("sagemaker.amazonaws.com", "bedrock.amazonaws.com"):
        template.has_resource_properties(
            "AWS::IAM::Role",
            {
                "AssumeRolePolicyDocument": {
                    "Statement": [
                        {
                            "Action": "sts:AssumeRole",
                            "Effect": "Allow",
                            "Principal": {"Service": service},
                            "Condition": SOURCE_ACCOUNT,
                        }
                    ]
                }
            },
        )


def test_no_policy_grants_every_action_or_a_whole_service(synthesized: Synthesized) -> None:
    statements = list(_statements(synthesized))
    assert statements
    for name, statement in statements:
        if statement["Effect"] != "Allow":
            continue
        for action in _as_list(statement["Action"]):
            assert action != "*", name
            assert not action.endswith(":*"), (name, action)


def test_pass_role_is_always_limited_to_named_roles_and_one_service(synthesized: Synthesized) -> None:
    for name, statement in _statements(synthesized):
        if "iam:PassRole" not in _as_list(statement["Action"]):
            continue
        assert _as_list(statement["Action"]) == ["iam:PassRole"], name
        for resource in _as_list(statement["Resource"]):
            assert resource != "*", name
        assert "iam:PassedToService" in statement["Condition"]["StringEquals"], name


def test_sagemaker_role_reads_and_writes_only_under_runs(synthesized: Synthesized) -> None:
    statements = _policy_of(synthesized, _role_named_by(synthesized, "sagemaker.amazonaws.com"))
    writes = [s for s in statements if "s3:PutObject" in _as_list(s["Action"])]
    write_resources = [r for s in writes for r in _as_list(s["Resource"])]
    assert any("/runs/*" in str(r) for r in write_resources)
    assert all("/runs/*" in str(r) or "customer-escrow" in str(r) for r in write_resources), write_resources
    reads = [r for s in statements if "s3:GetObject" in _as_list(s["Action"]) for r in _as_list(s["Resource"])]
    # Jobs read the dataset copies preflight pinned under runs/<run-id>/inputs/, never the live datasets/.
    assert any("/runs/*" in str(r) for r in reads)
    assert not any("/datasets/" in str(r) for r in reads), reads


def test_both_service_roles_can_read_the_escrow_checkpoint_buckets(synthesized: Synthesized) -> None:
    escrow = {"Fn::Join": ["", ["arn:aws:s3:::customer-escrow-", {"Ref": "AWS::AccountId"}, "-*"]]}
    escrow_objects = {"Fn::Join": ["", ["arn:aws:s3:::customer-escrow-", {"Ref": "AWS::AccountId"}, "-*/*"]]}
    for role in (("sagemaker.amazonaws.com",), IMPORT_ROLE):
        statements = _policy_of(synthesized, _role_named_by(synthesized, *role))
        escrow_statements = [s for s in statements if escrow in _as_list(s["Resource"])]
        assert escrow_statements, role
        for statement in escrow_statements:
            assert escrow_objects in _as_list(statement["Resource"])
            assert {"s3:GetObject", "s3:ListBucket"} <= set(_as_list(statement["Action"]))


def test_bedrock_import_role_only_reads_checkpoints_and_uses_the_key_through_bedrock(
    synthesized: Synthesized,
) -> None:
    statements = _policy_of(synthesized, _role_named_by(synthesized, *IMPORT_ROLE))
    key_actions = {"kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"}
    (key,) = synthesized.resources("AWS::KMS::Key")
    key_statements = [s for s in statements if key_actions & set(_as_list(s["Action"]))]
    assert [set(_as_list(s["Action"])) for s in key_statements] == [key_actions]
    (key_statement,) = key_statements
    assert key_statement["Resource"] == {"Fn::GetAtt": [key, "Arn"]}
    via_bedrock = {"Fn::Join": ["", ["bedrock.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    assert key_statement["Condition"] == {"StringEquals": {"kms:ViaService": via_bedrock}}
    actions = {a for s in statements for a in _as_list(s["Action"])}
    assert actions == {"s3:GetObject", "s3:ListBucket"} | key_actions


def test_sagemaker_role_pulls_only_the_nova_images_of_its_region(template) -> None:
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "PullNovaImages",
                                "Resource": [
                                    {
                                        "Fn::Join": [
                                            "",
                                            [
                                                "arn:aws:ecr:",
                                                {"Ref": "AWS::Region"},
                                                ":708977205387:repository/nova-evaluation-repo",
                                            ],
                                        ]
                                    },
                                    {
                                        "Fn::Join": [
                                            "",
                                            [
                                                "arn:aws:ecr:",
                                                {"Ref": "AWS::Region"},
                                                ":708977205387:repository/nova-fine-tune-repo",
                                            ],
                                        ]
                                    },
                                ],
                            }
                        )
                    ]
                )
            }
        },
    )


def test_wildcard_resources_are_only_used_where_no_resource_level_permission_exists(
    synthesized: Synthesized,
) -> None:
    # Actions without resource-level permissions (IAM service authorization reference).
    no_resource_level = {
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
        "states:ListExecutions",
        "sagemaker:ListTrainingJobs",
        "bedrock:ListCustomModels",
        "bedrock:ListCustomModelDeployments",
        "servicequotas:ListServiceQuotas",
        "servicequotas:ListAWSDefaultServiceQuotas",
    }
    for name, statement in _statements(synthesized):
        if statement["Effect"] == "Allow" and "*" in _as_list(statement["Resource"]):
            unexpected = set(_as_list(statement["Action"])) - no_resource_level
            assert not unexpected, (name, unexpected)
