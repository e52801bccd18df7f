"""Approval before deployment in the stack: context, substitutions, the decision function and its grants."""

from __future__ import annotations

from typing import Any

import pytest

from offline.asl import pipeline_state_machine
from offline.synth import Synthesized, synthesize
from stacks.config import SettingsError

HANDLERS = "lambdas.pipeline.handlers."


def _substitutions(synthesized: Synthesized) -> dict[str, Any]:
    resources = synthesized.template_json["Resources"]
    return resources[pipeline_state_machine(synthesized.template_json)]["Properties"]["DefinitionSubstitutions"]


def _role_statements(synthesized: Synthesized, handler: str) -> list[dict]:
    [function] = [
        f for f in synthesized.resources("AWS::Lambda::Function").values() if f["Properties"]["Handler"] == handler
    ]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        s
        for p in synthesized.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statements: list[dict]) -> set[str]:
    return {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}


def test_approval_is_off_by_default_with_a_72_hour_timeout(synthesized: Synthesized) -> None:
    substitutions = _substitutions(synthesized)
    assert substitutions["ApprovalMode"] == "none"
    assert substitutions["ApprovalTimeoutSeconds"] == str(72 * 3600)


def test_required_approval_and_its_timeout_reach_the_definition() -> None:
    substitutions = _substitutions(synthesize(context={"approval": "required", "approvalTimeoutHours": "24"}))
    assert substitutions["ApprovalMode"] == "required" and substitutions["ApprovalTimeoutSeconds"] == "86400"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"approval": "yes"}, "approval='yes': use one of none, required"),
        ({"approval": True}, "approval=True: use one of none, required"),
        ({"approvalTimeoutHours": "3 days"}, "approvalTimeoutHours='3 days': not a whole number"),
        ({"approvalTimeoutHours": 0}, "approvalTimeoutHours=0: a whole number of hours from 1 to 96"),
        ({"approvalTimeoutHours": 200}, "approvalTimeoutHours=200"),
    ],
)
def test_bad_approval_context_stops_synthesis_naming_the_key(context: dict, message: str) -> None:
    from app import build_app

    with pytest.raises(SettingsError, match=message):
        build_app(context=context)


def test_the_decision_function_sends_only_task_success_to_its_own_state_machine(synthesized: Synthesized) -> None:
    statements = _role_statements(synthesized, f"{HANDLERS}apply_approval")
    [send] = [s for s in statements if s["Action"] == "states:SendTaskSuccess"]
    assert send["Resource"] == {"Ref": pipeline_state_machine(synthesized.template_json)}
    assert "states:SendTaskFailure" not in _actions(statements)
    assert {"sns:Publish", "s3:PutObject", "s3:GetObject", "s3:DeleteObject"} <= _actions(statements)
    [delete] = [s for s in statements if "s3:DeleteObject" in _actions([s])]
    assert delete["Resource"]["Fn::Join"][1][-1] == "/runs/*/approval-token.json"  # deletes tokens, nothing else


def test_an_approval_upload_invokes_the_decision_function(synthesized: Synthesized) -> None:
    rules = [
        r
        for r in synthesized.resources("AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"]["detail"].get("object", {}).get("key") == [{"prefix": "approvals/"}]
    ]
    [rule] = rules
    assert rule["Properties"]["EventPattern"]["detail-type"] == ["Object Created"]
    [target] = rule["Properties"]["Targets"]
    functions = synthesized.template_json["Resources"]
    function = functions[target["Arn"]["Fn::GetAtt"][0]]
    assert function["Properties"]["Handler"] == f"{HANDLERS}apply_approval"
    assert "TOPIC_ARN" in function["Properties"]["Environment"]["Variables"]


def test_the_request_function_publishes_on_the_run_topic(synthesized: Synthesized) -> None:
    assert "sns:Publish" in _actions(_role_statements(synthesized, f"{HANDLERS}request_approval"))
