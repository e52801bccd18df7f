"""Pipeline construct: the state machine's configuration and the least privilege of every role it uses.

Resources are found by their properties (handler names, substitution keys), never by logical IDs.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match

from offline.asl import pipeline_state_machine, placeholders
from offline.synth import Synthesized
from stepfunctions.pipeline import BEDROCK_CUSTOMIZATION_JOB_SYNC, FUNCTIONS, task_integrations

HANDLERS = "lambdas.pipeline.handlers."
ACCOUNT_REGION = [{"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"}]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _functions(synthesized: Synthesized) -> dict[str, dict]:
    """Pipeline stage functions (the definition's, not the approval decision function) by handler name."""
    stage_handlers = {f"{HANDLERS}{function.handler}" for function in FUNCTIONS}
    return {
        f["Properties"]["Handler"].removeprefix(HANDLERS): f
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] in stage_handlers
    }


def _logical_id_of(synthesized: Synthesized, resource: dict) -> str:
    return next(k for k, v in synthesized.template_json["Resources"].items() if v is resource)


def _statements_of_role(synthesized: Synthesized, role_id: str) -> list[dict]:
    return [
        s
        for p in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def _function_statements(synthesized: Synthesized, handler: str) -> list[dict]:
    role_id = _functions(synthesized)[handler]["Properties"]["Role"]["Fn::GetAtt"][0]
    return _statements_of_role(synthesized, role_id)


def _state_machine(synthesized: Synthesized) -> dict:
    return synthesized.template_json["Resources"][pipeline_state_machine(synthesized.template_json)]


def _state_machine_statements(synthesized: Synthesized) -> list[dict]:
    role_id = _state_machine(synthesized)["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    return _statements_of_role(synthesized, role_id)


def _actions(statements: list[dict]) -> set[str]:
    return {a for s in statements for a in _as_list(s["Action"])}


def _with_action(statements: list[dict], action: str) -> list[dict]:
    return [s for s in statements if action in _as_list(s["Action"])]


def _join(*parts: Any) -> dict:
    return {"Fn::Join": ["", list(parts)]}


def test_every_stage_has_a_function_whose_handler_exists(synthesized: Synthesized) -> None:
    functions = _functions(synthesized)
    module = importlib.import_module("lambdas.pipeline.handlers")
    assert set(functions) == {function.handler for function in FUNCTIONS}
    for handler in functions:
        assert callable(getattr(module, handler)), handler


def test_the_state_machine_is_standard_traced_and_logs_every_event(template) -> None:
    log_group = Capture()
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": {
                "Level": "ALL",
                "IncludeExecutionData": True,
                "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [log_group, "Arn"]}}}],
            },
            "DefinitionSubstitutions": Match.object_like({"PipelineName": "nova"}),
        },
    )
    template.has_resource(
        "AWS::Logs::LogGroup",
        {"Properties": {"RetentionInDays": 90, "LogGroupName": Match.string_like_regexp(r"^/aws/vendedlogs/states/")}},
    )
    assert log_group.as_string()


def test_substitutions_name_the_stage_functions_the_sagemaker_role_and_the_key(synthesized: Synthesized) -> None:
    resources = synthesized.template_json["Resources"]
    substitutions = _state_machine(synthesized)["Properties"]["DefinitionSubstitutions"]
    functions = _functions(synthesized)
    for function in FUNCTIONS:
        # a published version of the function (a deploy during a run does not change the run's code)
        version = resources[substitutions[f"{function.construct_id}FunctionArn"]["Ref"]]
        assert version["Type"] == "AWS::Lambda::Version" and version["DeletionPolicy"] == "Retain", function
        assert resources[version["Properties"]["FunctionName"]["Ref"]] is functions[function.handler], function
    role = resources[substitutions["SageMakerRoleArn"]["Fn::GetAtt"][0]]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "sagemaker.amazonaws.com"
    }
    # platform bedrock: the role the customization jobs run with is one Bedrock may assume
    bedrock_role = resources[substitutions["BedrockCustomizationRoleArn"]["Fn::GetAtt"][0]]
    assert bedrock_role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "bedrock.amazonaws.com"
    }
    assert resources[substitutions["KmsKeyArn"]["Fn::GetAtt"][0]]["Type"] == "AWS::KMS::Key"
    assert resources[substitutions["RunLockTableName"]["Ref"]]["Type"] == "AWS::DynamoDB::Table"
    # nothing else: every substitution is one of the above (or, for a definition that runs Bedrock customization jobs,
    # the role they run as) or a plain setting, and the definition uses each one
    definition = synthesized.definition(pipeline_state_machine(synthesized.template_json))
    runs_bedrock_jobs = BEDROCK_CUSTOMIZATION_JOB_SYNC in task_integrations(json.loads(definition))
    references = {f"{function.construct_id}FunctionArn" for function in FUNCTIONS} | {
        "SageMakerRoleArn",
        "BedrockCustomizationRoleArn",
        "KmsKeyArn",
        "RunLockTableName",
        *(["BedrockCustomizationRoleArn"] if runs_bedrock_jobs else []),
    }
    assert {k for k, v in substitutions.items() if not isinstance(v, str)} == references
    assert placeholders(definition) == set(substitutions)


def test_stage_and_grader_functions_reserve_the_configured_concurrency(synthesized: Synthesized) -> None:
    from stacks.config import DEFAULT_GRADER_RESERVED_CONCURRENCY, DEFAULT_STAGE_RESERVED_CONCURRENCY

    functions = synthesized.resources("AWS::Lambda::Function").values()
    reserved = {
        f["Properties"]["Handler"]: f["Properties"].get("ReservedConcurrentExecutions")
        for f in functions
        if f["Properties"]["Handler"].startswith((HANDLERS, "lambdas.reward."))
        and not f["Properties"]["Handler"].endswith(".apply_approval")
    }
    stages = {h: r for h, r in reserved.items() if h.startswith(HANDLERS)}
    graders = [r for h, r in reserved.items() if not h.startswith(HANDLERS)]
    assert len(stages) == len(FUNCTIONS) and graders
    assert set(stages.values()) == {DEFAULT_STAGE_RESERVED_CONCURRENCY}
    assert set(graders) == {DEFAULT_GRADER_RESERVED_CONCURRENCY}


def test_the_run_lock_is_taken_only_by_the_state_machine_on_its_own_table(synthesized: Synthesized) -> None:
    resources = synthesized.template_json["Resources"]
    [table] = [k for k, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table"]
    writers = _with_action(_state_machine_statements(synthesized), "dynamodb:PutItem")
    assert [s["Resource"] for s in writers] == [{"Fn::GetAtt": [table, "Arn"]}]
    properties = resources[table]["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "pipeline", "KeyType": "HASH"}]
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_the_state_machine_role_has_only_the_actions_the_definition_needs(synthesized: Synthesized) -> None:
    assert _actions(_state_machine_statements(synthesized)) == {
        "lambda:InvokeFunction",
        "dynamodb:PutItem",
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:AddTags",
        "sagemaker:ListTags",
        # the Bedrock road's customization jobs (tests/infrastructure/test_bedrock_iam.py checks their scope)
        "bedrock:CreateModelCustomizationJob",
        "bedrock:GetModelCustomizationJob",
        "bedrock:StopModelCustomizationJob",
        "bedrock:TagResource",
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:CreateGrant",
        "kms:GenerateDataKey",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
        "iam:PassRole",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    }


def test_the_state_machine_invokes_exactly_its_stage_functions(synthesized: Synthesized) -> None:
    (statement,) = _with_action(_state_machine_statements(synthesized), "lambda:InvokeFunction")
    resources = synthesized.template_json["Resources"]
    invoked = {resources[r["Ref"]]["Properties"]["FunctionName"]["Ref"] for r in _as_list(statement["Resource"])}
    expected = {_logical_id_of(synthesized, f) for f in _functions(synthesized).values()}
    assert invoked == expected  # the published versions the definition invokes, no wildcard, no grader


def test_training_jobs_are_limited_to_the_pipeline_prefix(synthesized: Synthesized) -> None:
    statements = _state_machine_statements(synthesized)
    (create,) = _with_action(statements, "sagemaker:CreateTrainingJob")
    assert create["Resource"] == _join("arn:aws:sagemaker:", *ACCOUNT_REGION, ":training-job/nova-*")
    (rule,) = _with_action(statements, "events:PutRule")
    assert rule["Resource"] == _join(
        "arn:aws:events:", *ACCOUNT_REGION, ":rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule"
    )


def test_training_jobs_may_be_created_only_on_the_run_policy_s_instance_types(synthesized: Synthesized) -> None:
    from lambdas.pipeline.policy import RunPolicy

    (create,) = _with_action(_state_machine_statements(synthesized), "sagemaker:CreateTrainingJob")
    assert _as_list(create["Action"]) == ["sagemaker:CreateTrainingJob"]  # the key applies to this action only
    allowed = create["Condition"]["ForAllValues:StringEquals"]["sagemaker:InstanceTypes"]
    assert sorted(_as_list(allowed)) == sorted(RunPolicy().allowedInstanceTypes)


def test_stage_functions_receive_the_run_policy(synthesized: Synthesized) -> None:
    from lambdas.pipeline.policy import RunPolicy, parse_policy

    for handler, function in _functions(synthesized).items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert parse_policy(variables["RUN_POLICY"], where="RUN_POLICY") == RunPolicy(), handler


def test_the_state_machine_passes_the_sagemaker_role_and_each_role_only_to_the_service_it_trusts(
    synthesized: Synthesized,
) -> None:
    resources = synthesized.template_json["Resources"]
    passed = set()
    for statement in _with_action(_state_machine_statements(synthesized), "iam:PassRole"):
        role = resources[statement["Resource"]["Fn::GetAtt"][0]]
        service = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": service}}
        passed.add((role["Properties"]["Description"], service))
    # the execution role of the training jobs; the Bedrock customization role when the definition runs Bedrock jobs
    # (tests/infrastructure/test_bedrock_iam.py)
    assert ("Runs Nova SFT, RFT and evaluation training jobs", "sagemaker.amazonaws.com") in passed
    assert passed <= {
        ("Runs Nova SFT, RFT and evaluation training jobs", "sagemaker.amazonaws.com"),
        ("Runs Bedrock model customization jobs (SFT, RFT) of the bedrock platform", "bedrock.amazonaws.com"),
    }


def test_only_the_import_function_passes_the_bedrock_import_role(synthesized: Synthesized) -> None:
    for handler in _functions(synthesized):
        passes = _with_action(_function_statements(synthesized, handler), "iam:PassRole")
        if handler == "import_model":
            (statement,) = passes
            assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}
        else:
            assert passes == [], handler


@pytest.mark.parametrize(
    ("handler", "actions", "resource_types"),
    [
        (
            "import_model",
            {
                "bedrock:CreateCustomModel",
                "bedrock:TagResource",
                "bedrock:GetCustomModel",
                "bedrock:ListTagsForResource",
            },
            {"custom-model/*"},
        ),
        ("check_model_import", {"bedrock:GetCustomModel"}, {"custom-model/*"}),
        (
            "deploy_model",
            {
                "bedrock:CreateCustomModelDeployment",
                "bedrock:UpdateCustomModelDeployment",
                "bedrock:TagResource",
                "bedrock:GetCustomModelDeployment",
                # on the bedrock platform: the provisional deployment a move to the model made redundant
                "bedrock:DeleteCustomModelDeployment",
            },
            {"custom-model/*", "custom-model-deployment/*"},
        ),
        ("check_deployment", {"bedrock:GetCustomModelDeployment"}, {"custom-model-deployment/*"}),
        (
            # on the bedrock platform: deletes the provisional deployment of a model it keeps
            "delete_model",
            {"bedrock:DeleteCustomModel", "bedrock:GetCustomModelDeployment", "bedrock:DeleteCustomModelDeployment"},
            {"custom-model/*", "custom-model-deployment/*"},
        ),
        (
            "record_run",
            {"bedrock:DeleteCustomModel", "bedrock:GetCustomModelDeployment", "bedrock:DeleteCustomModelDeployment"},
            {"custom-model/*", "custom-model-deployment/*"},
        ),
        (
            # a provisional deployment of the bedrock platform that is not serving
            "record_failed_run",
            {"bedrock:GetCustomModelDeployment", "bedrock:DeleteCustomModelDeployment"},
            {"custom-model-deployment/*"},
        ),
    ],
)
def test_bedrock_calls_are_scoped_to_custom_models_and_deployments(
    synthesized: Synthesized, handler: str, actions: set[str], resource_types: set[str]
) -> None:
    statements = [
        s
        for s in _function_statements(synthesized, handler)
        if any(a.startswith("bedrock:") for a in _as_list(s["Action"]))
    ]
    (statement,) = statements
    assert set(_as_list(statement["Action"])) == actions
    expected = [_join("arn:aws:bedrock:", *ACCOUNT_REGION, f":{kind}") for kind in sorted(resource_types)]
    assert sorted(_as_list(statement["Resource"]), key=str) == sorted(expected, key=str)
    others = {h for h in _functions(synthesized) if h != handler}
    # The create functions also read what they create (a name conflict is reused only when it is this run's).
    shared = {"bedrock:TagResource", "bedrock:GetCustomModel", "bedrock:GetCustomModelDeployment"}
    # Two functions delete models: the record (retention) and "Delete model" (a model the run does not deploy).
    deleters = {"record_run", "delete_model"}
    # Deployments are deleted by the records, "Delete model", the deploy step (a provisional deployment the move made
    # redundant) and the Bedrock evaluation (its own provisional deployment), which also creates one.
    deployment_deleters = {"record_run", "record_failed_run", "delete_model", "deploy_model", "evaluate_on_bedrock"}
    for other in others:
        other_actions = _actions(_function_statements(synthesized, other))
        allowed = shared | ({"bedrock:DeleteCustomModel"} if {handler, other} <= deleters else set())
        if {handler, other} <= deployment_deleters:
            allowed |= {"bedrock:DeleteCustomModelDeployment"}
        if other == "evaluate_on_bedrock":
            allowed |= {"bedrock:CreateCustomModelDeployment"}
        assert not (actions - allowed) & other_actions, other


def test_only_preflight_and_the_bedrock_evaluation_invoke_the_graders(synthesized: Synthesized) -> None:
    resources = synthesized.template_json["Resources"]
    for handler in _functions(synthesized):
        invokes = _with_action(_function_statements(synthesized, handler), "lambda:InvokeFunction")
        # the smoke test, and rft_eval scoring on the bedrock platform
        if handler not in {"preflight_checks", "evaluate_on_bedrock"}:
            assert invokes == [], handler
            continue
        (statement,) = invokes
        targets = [resources[r["Fn::GetAtt"][0]] for r in _as_list(statement["Resource"])]
        assert targets and all(t["Properties"]["Handler"] == "lambdas.reward.handler.lambda_handler" for t in targets)


def test_only_preflight_reads_service_quotas_and_only_reads_them(synthesized: Synthesized) -> None:
    for handler in _functions(synthesized):
        statements = _function_statements(synthesized, handler)
        quota_actions = {a for a in _actions(statements) if a.startswith("servicequotas:")}
        expected = {"servicequotas:ListServiceQuotas", "servicequotas:ListAWSDefaultServiceQuotas"}
        assert quota_actions == (expected if handler == "preflight_checks" else set()), handler


def _object_prefixes(statements: list[dict], action: str) -> set[str]:
    prefixes = set()
    for statement in _with_action(statements, action):
        for resource in _as_list(statement["Resource"]):
            prefixes.add(
                resource["Fn::Join"][1][-1] if isinstance(resource, dict) and "Fn::Join" in resource else str(resource)
            )
    return prefixes


def test_stage_functions_write_only_run_outputs_and_only_the_recorder_writes_champions(
    synthesized: Synthesized,
) -> None:
    writers = {}
    for handler in _functions(synthesized):
        writers[handler] = _object_prefixes(_function_statements(synthesized, handler), "s3:PutObject")
    assert writers["record_run"] == {"/runs/*", "/champions/*"}
    for handler in ("preflight_checks", "prepare_job", "record_failed_run"):
        assert writers[handler] == {"/runs/*"}, handler
    for handler in (
        "validate_run",
        "resolve_checkpoint",
        "read_evaluation",
        "collect_metrics",
        "apply_gate",
        "import_model",
        "check_model_import",
        "deploy_model",
        "check_deployment",
    ):
        assert writers[handler] == set(), handler


def test_datasets_are_read_only_and_only_where_needed(synthesized: Synthesized) -> None:
    readers = {
        h: _object_prefixes(_function_statements(synthesized, h), "s3:GetObject") for h in _functions(synthesized)
    }
    # validation reads datasets and, to check a resumeFrom checkpoint, run records and nothing else of a run
    assert readers["validate_run"] == {"/datasets/*", "/runs/*/run.json"}
    assert readers["preflight_checks"] == {"/datasets/*"}
    assert readers["apply_gate"] == {"/champions/*"}
    assert readers["resolve_checkpoint"] == readers["read_evaluation"] == {"/runs/*"}


def test_job_preparation_may_stop_only_the_pipelines_own_jobs(synthesized: Synthesized) -> None:
    (statement,) = _with_action(_function_statements(synthesized, "prepare_job"), "sagemaker:StopTrainingJob")
    assert statement["Resource"] == _join("arn:aws:sagemaker:", *ACCOUNT_REGION, ":training-job/nova-*")
    assert set(_as_list(statement["Action"])) == {"sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"}


def test_stage_functions_get_their_configuration_from_the_environment(synthesized: Synthesized, template) -> None:
    (key,) = synthesized.resources("AWS::KMS::Key")
    for handler, function in _functions(synthesized).items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["PIPELINE_NAME"] == "nova", handler
        # The imported model is encrypted with the project key (CreateCustomModel modelKmsKeyArn).
        assert variables["MODEL_KMS_KEY_ARN"] == {"Fn::GetAtt": [key, "Arn"]}, handler
        for name in ("DATA_BUCKET_NAME", "ARTIFACTS_BUCKET_NAME", "BEDROCK_IMPORT_ROLE_ARN", "GRADER_FUNCTIONS"):
            assert name in variables, (handler, name)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "lambdas.pipeline.handlers.preflight_checks", "Timeout": 900, "MemorySize": 512},
    )


BEDROCK_VIA_SERVICE = {"StringEquals": {"kms:ViaService": _join("bedrock.", {"Ref": "AWS::Region"}, ".amazonaws.com")}}


def test_the_import_function_lets_bedrock_encrypt_the_model_with_the_project_key(synthesized: Synthesized) -> None:
    (key,) = synthesized.resources("AWS::KMS::Key")
    (statement,) = _with_action(_function_statements(synthesized, "import_model"), "kms:CreateGrant")
    assert set(_as_list(statement["Action"])) == {
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:DescribeKey",
        "kms:CreateGrant",
    }
    assert statement["Resource"] == {"Fn::GetAtt": [key, "Arn"]}
    assert statement["Condition"] == BEDROCK_VIA_SERVICE


def test_no_other_stage_function_may_create_grants_on_the_key(synthesized: Synthesized) -> None:
    for handler in _functions(synthesized):
        if handler != "import_model":
            actions = _actions(_function_statements(synthesized, handler))
            assert not actions & {"kms:CreateGrant", "kms:DescribeKey"}, handler


@pytest.mark.parametrize(
    ("handler", "action"),
    [("import_model", "bedrock:GetCustomModel"), ("deploy_model", "bedrock:GetCustomModelDeployment")],
)
def test_the_create_functions_may_read_what_a_name_conflict_points_at(
    synthesized: Synthesized, handler: str, action: str
) -> None:
    # lambdas/pipeline/bedrock.py reads the existing model / deployment on ConflictException
    assert action in _actions(_function_statements(synthesized, handler))


def test_preflight_may_copy_the_validated_dataset_versions_under_the_run(synthesized: Synthesized) -> None:
    # lambdas/pipeline/preflight.py: a managed (multipart) server-side copy of datasets/<file>?versionId=...
    # to runs/<run-id>/inputs/<dataset>/, well within the function's 15 minutes
    statements = _function_statements(synthesized, "preflight_checks")
    assert _object_prefixes(statements, "s3:GetObjectVersion") == {"/datasets/*"}
    assert _object_prefixes(statements, "s3:PutObject") == {"/runs/*"}
    assert _object_prefixes(statements, "s3:AbortMultipartUpload") == {"/runs/*"}
    assert _functions(synthesized)["preflight_checks"]["Properties"]["Timeout"] >= 600
