"""Triggers and notifications around a state machine imported by ARN (no ``Name`` attribute to read).

The constructs accept any ``IStateMachine``: the execution ARNs their roles may
describe or read are built from the state machine's name, taken from its ARN when
the state machine is not defined in the app. Synthesized through the cdk-nag
AwsSolutions plugin, so the acknowledgement of that wildcard must match too.
"""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import AwsSolutionsChecks

from stacks.notifications import Notifications
from stacks.storage import Storage
from stacks.triggers import Triggers

STACK = "ImportedStateMachineTest"
ACCOUNT = "123456789012"
LITERAL_ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:nova-pipeline"


class ImportedStateMachineStack(cdk.Stack):
    def __init__(self, scope: cdk.App, *, arn_from_parameter: bool) -> None:
        super().__init__(scope, STACK, env=cdk.Environment(account=ACCOUNT, region="us-east-1"))
        if arn_from_parameter:
            arn = cdk.CfnParameter(self, "StateMachineArn", type="String").value_as_string
        else:
            arn = LITERAL_ARN
        state_machine = sfn.StateMachine.from_state_machine_arn(self, "Imported", arn)
        storage = Storage(self, "Storage", retain_data=False)
        retention = logs.RetentionDays.ONE_WEEK
        Triggers(
            self,
            "Triggers",
            pipeline_name="nova",
            state_machine=state_machine,
            data_bucket=storage.data_bucket,
            key=storage.key,
            log_retention=retention,
        )
        Notifications(
            self,
            "Notifications",
            pipeline_name="nova",
            state_machine=state_machine,
            artifacts_bucket=storage.artifacts_bucket,
            key=storage.key,
            log_retention=retention,
            notification_email=None,
        )


def _synthesize(outdir: Path, *, arn_from_parameter: bool) -> dict:
    from app import default_context

    app = cdk.App(context=default_context(), outdir=str(outdir))
    ImportedStateMachineStack(app, arn_from_parameter=arn_from_parameter)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
    app.synth()
    return json.loads((outdir / f"{STACK}.template.json").read_text())


def _resource_of(template: dict, role_fragment: str, action: str) -> object:
    [resource] = [
        statement["Resource"]
        for logical_id, policy in template["Resources"].items()
        if policy["Type"] == "AWS::IAM::Policy" and role_fragment in logical_id
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    ]
    return resource


def _rendered(resource: object) -> str:
    """The ARN with ``Fn::Join`` flattened and the partition (a reference, or a literal) written as ``<partition>``."""
    if isinstance(resource, str):  # partition literals: the stack's region is known at synthesis
        return resource.replace("arn:aws:", "arn:<partition>:", 1)
    assert isinstance(resource, dict)
    return "".join(
        part if isinstance(part, str) else "<partition>" if part == {"Ref": "AWS::Partition"} else json.dumps(part)
        for part in resource["Fn::Join"][1]
    )


@pytest.fixture(scope="module")
def literal(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _synthesize(tmp_path_factory.mktemp("imported-literal"), arn_from_parameter=False)


@pytest.mark.parametrize(
    "role_fragment, action",
    [("TriggerFunction", "states:DescribeExecution"), ("NotifyFunction", "states:GetExecutionHistory")],
)
def test_execution_permissions_name_the_imported_state_machine(literal: dict, role_fragment: str, action: str) -> None:
    # Given a state machine imported by a literal ARN, the role may act on its executions only
    expected = f"arn:<partition>:states:us-east-1:{ACCOUNT}:execution:nova-pipeline:*"
    assert _rendered(_resource_of(literal, role_fragment, action)) == expected


def test_the_trigger_starts_and_lists_the_imported_state_machine(literal: dict) -> None:
    assert _resource_of(literal, "TriggerFunction", "states:ListExecutions") == LITERAL_ARN
    [environment] = [
        r["Properties"]["Environment"]["Variables"]
        for r in literal["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "STATE_MACHINE_ARN" in r["Properties"]["Environment"]["Variables"]
    ]
    assert environment["STATE_MACHINE_ARN"] == LITERAL_ARN


def test_an_arn_known_only_at_deployment_gives_the_name_from_the_arn(tmp_path: Path) -> None:
    # Given an ARN from a stack parameter, the name is the ARN's last colon-separated field
    template = _synthesize(tmp_path, arn_from_parameter=True)
    name = {"Fn::Select": [6, {"Fn::Split": [":", {"Ref": "StateMachineArn"}]}]}
    for role_fragment, action in [
        ("TriggerFunction", "states:DescribeExecution"),
        ("NotifyFunction", "states:GetExecutionHistory"),
    ]:
        resource = _resource_of(template, role_fragment, action)
        assert isinstance(resource, dict)
        parts = resource["Fn::Join"][1]
        assert parts[-2:] == [name, ":*"]
