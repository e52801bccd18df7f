"""The operations constructs as wired into the real app: pipeline state machine, context values."""

from __future__ import annotations

import json

import pytest

from offline.synth import Synthesized, synthesize
from stacks.config import PipelineSettings, SettingsError


def _pipeline_state_machine(synthesized: Synthesized) -> str:
    [state_machine] = synthesized.resources("AWS::StepFunctions::StateMachine")
    return state_machine


@pytest.mark.parametrize("name", ["rejected", "templates"])
def test_pipeline_names_that_collide_with_request_folders_are_refused(name: str) -> None:
    with pytest.raises(SettingsError, match=f"pipelineName='{name}': reserved"):
        PipelineSettings(pipeline_name=name)


def test_the_trigger_starts_the_pipeline_state_machine(synthesized: Synthesized) -> None:
    state_machine = _pipeline_state_machine(synthesized)
    [trigger] = [
        f["Properties"]
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "lambdas.trigger.handler.lambda_handler"
    ]
    assert trigger["Environment"]["Variables"]["STATE_MACHINE_ARN"] == {"Ref": state_machine}


def test_the_notification_rule_watches_the_pipeline_state_machine(synthesized: Synthesized) -> None:
    state_machine = _pipeline_state_machine(synthesized)
    [rule] = [
        r["Properties"]
        for r in synthesized.resources("AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"].get("source") == ["aws.states"]
    ]
    assert rule["EventPattern"]["detail"]["stateMachineArn"] == [{"Ref": state_machine}]


def test_default_context_has_no_schedule_and_no_email(synthesized: Synthesized) -> None:
    assert synthesized.resources("AWS::Scheduler::Schedule") == {}
    assert synthesized.resources("AWS::SNS::Subscription") == {}


def test_context_adds_the_schedule_and_the_email_subscription() -> None:
    synthesized = synthesize(context={"notificationEmail": "ml-team@example.com", "retrainSchedule": "rate(7 days)"})
    [schedule] = synthesized.resources("AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["ScheduleExpression"] == "rate(7 days)"
    assert json.loads(schedule["Properties"]["Target"]["Input"])["pipeline"] == "nova"
    [subscription] = synthesized.resources("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Endpoint"] == "ml-team@example.com"
