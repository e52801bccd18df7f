"""Approval before deployment, rehearsed: a stack with ``approval=required`` waits after its gate for the
reviewer's ``approvals/<run-id>.json``, delivered through its upload event to the decision function."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline.synth import Synthesized, synthesize
from rehearsal import __main__ as cli
from rehearsal.runner import Result, Scenario, rehearse

TIMEOUT_HOURS = 24


@pytest.fixture(scope="module")
def approval_synthesized() -> Synthesized:
    return synthesize(context={"approval": "required", "approvalTimeoutHours": TIMEOUT_HOURS})


def _rehearse(synthesized: Synthesized, out_dir: Path, approval: str) -> Result:
    return rehearse(Scenario(approval=approval), synthesized=synthesized, out_dir=out_dir)


def _subjects(result: Result) -> list[str]:
    return [str(n["subject"]) for n in result.notifications]


def test_an_approved_run_waits_for_the_decision_then_deploys(approval_synthesized: Synthesized, out_dir: Path) -> None:
    result = _rehearse(approval_synthesized, out_dir, "approve")
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.exit_code == 0 and result.deployment_arn
    entered = result.states_entered()
    # the candidate was imported beside the final evaluation; only its deployment waited for the decision
    assert entered.index("Import the candidate beside the final evaluation") < entered.index("Wait for approval")
    assert entered.index("Wait for approval") < entered.index("Deploy model on demand")
    assert result.run is not None and result.run["status"] == "SUCCEEDED"
    decision = result.run["approval"]["decision"]
    assert decision["decision"] == "approve" and decision["file"].endswith(f"approvals/{result.run['runId']}.json")
    subjects = _subjects(result)
    assert subjects[0].endswith("approval needed") and subjects[1].endswith("approved")
    assert result.lock_holder_after is None and result.function_errors == []


def test_a_rejected_run_is_recorded_and_notified_and_deploys_nothing(
    approval_synthesized: Synthesized, out_dir: Path
) -> None:
    result = _rehearse(approval_synthesized, out_dir, "reject")
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    # the model imported beside the final evaluation is deleted; nothing is deployed
    assert result.models == [] and result.deployments == []
    operations = [call["operation"] for call in result.bedrock_calls]
    assert operations.count("DeleteCustomModel") == 1 and not [op for op in operations if "Deployment" in op]
    assert result.run is not None and result.run["status"] == "REJECTED"
    assert result.run["approval"]["decision"]["reason"] == "rehearsal reviewer: reject"
    assert "REJECTED at approval (not deployed)" in _subjects(result)[-1]
    assert "reason: rehearsal reviewer: reject" in str(result.notifications[-1]["message"])
    assert result.exit_code == 2 and result.lock_holder_after is None


def test_a_run_without_a_decision_expires_after_the_configured_hours(
    approval_synthesized: Synthesized, out_dir: Path
) -> None:
    result = _rehearse(approval_synthesized, out_dir, "expire")
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.models == [] and result.deployments == []
    assert result.run is not None and result.run["status"] == "APPROVAL_EXPIRED"
    assert result.run["approval"]["decision"]["decision"] == "expired"
    assert "Approval expired" in result.states_entered()
    assert result.simulated_seconds >= TIMEOUT_HOURS * 3600  # the wait lasted the timeout, in simulated time
    assert "APPROVAL EXPIRED" in _subjects(result)[-1] and result.lock_holder_after is None
    assert json.loads((out_dir / "run.json").read_text())["status"] == "APPROVAL_EXPIRED"


def test_the_command_rejects_an_unknown_approval_outcome(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("REHEARSAL_APPROVAL", "maybe")
    assert cli.main([]) == 64
    assert "REHEARSAL_APPROVAL='maybe': expected one of approve, reject, expire" in capsys.readouterr().err
