"""A dry run (``dryRun`` in the run input): the plan carries it, the record says DRY_RUN, no champion changes."""

from __future__ import annotations

from typing import Any

from lambdas.notify.message import ExecutionEnd, render_notification
from lambdas.pipeline.plan import initial_stage_records
from lambdas.pipeline.schema import RunRecord
from lambdas.pipeline.validation import input_problems
from tests.unit.pipeline import samples
from tests.unit.pipeline.test_record import _read, _record


def _dry_state() -> dict:
    plan = samples.plan().model_copy(update={"dryRun": True})
    return {
        "input": {**samples.run_input(), "dryRun": True},
        "execution": samples.EXECUTION,
        "plan": plan.to_json(),
        "stages": initial_stage_records(plan.enabled, None).to_json(),
        "preflight": {
            "datasets": {},
            "cost": {"estimatedUsd": 1788.8, "maxUsd": 2000.0, "items": []},
            "quotas": {"status": "checked"},
        },
    }


def test_dry_run_is_a_boolean_of_the_run_input() -> None:
    assert input_problems({**samples.run_input(), "dryRun": True}) == []
    (problem,) = input_problems({**samples.run_input(), "dryRun": "yes"})
    assert problem.startswith("dryRun: ")


def test_a_dry_run_is_recorded_as_dry_run_with_every_stage_skipped_and_no_champion(s3: Any) -> None:
    result = _record(s3, _dry_state())
    assert result["status"] == "DRY_RUN" and result["champion"] is None
    run = _read(s3, "runs/run-1-0b9d6cbe/run.json")
    assert run["status"] == "DRY_RUN" and run["error"] is None
    assert {stage["status"] for stage in run["stages"].values()} == {"SKIPPED"}
    assert run["preflight"]["cost"]["estimatedUsd"] == 1788.8
    note = render_notification(
        RunRecord.model_validate(run),
        ExecutionEnd(status="SUCCEEDED", execution_arn=samples.EXECUTION["id"], pipeline=samples.PIPELINE),
    )
    assert "DRY RUN" in note.subject and "no training job started" in note.subject
