"""The rehearsal's progress lines: a few words about each state's result."""

from __future__ import annotations

import json

from rehearsal.progress import _summary


def test_a_retry_decision_shows_its_reason_not_the_failed_attempt() -> None:
    job = {"name": "nova-run-sft-a1", "attempt": 1, "decision": {"retry": True, "reason": "quota error: retrying"}}
    assert _summary(json.dumps({"job": job}), "Decide whether to retry the SFT job") == "quota error: retrying"


def test_a_prepared_job_shows_its_name_and_attempt() -> None:
    job = {"name": "nova-run-sft-a2", "attempt": 2}
    assert _summary(json.dumps({"job": job}), "Prepare SFT job") == "nova-run-sft-a2 (attempt 2)"


def test_an_evaluation_on_bedrock_shows_its_phase_and_progress() -> None:
    evaluation = {"done": False, "phase": "invoking", "processed": 8, "total": 12, "waitSeconds": 30}
    output = json.dumps({"job": {"name": "nova-run-final-eval-a1", "evaluation": evaluation}})
    assert _summary(output, "Evaluate final model on Bedrock") == "invoking 8/12"
    waiting = {"done": False, "phase": "deploying", "processed": 0, "total": 0, "waitSeconds": 60}
    assert _summary(json.dumps({"job": {"evaluation": waiting}}), "Evaluate final model on Bedrock") == "deploying"


def _event(kind: str, minute: float, name: str = "", **details: object) -> dict:
    import datetime as dt

    stamp = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=minute)
    event: dict = {"type": kind, "timestamp": stamp}
    if kind.endswith("Entered"):
        event["stateEnteredEventDetails"] = {"name": name}
    if kind.endswith("Exited"):
        event["stateExitedEventDetails"] = {"name": name, **details}
    return event


def _view_lines(events: list[dict]) -> list[str]:
    import datetime as dt
    import io

    from rehearsal.progress import ProgressView

    out = io.StringIO()
    ProgressView(out, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).feed(events)
    return out.getvalue().splitlines()


def test_parallel_branches_are_printed_in_time_order_and_a_failed_training_stage_marks_the_parallel() -> None:
    output = json.dumps({"stages": {"sftEval": {"status": "SUCCEEDED"}, "rft": {"status": "FAILED"}}})
    events = [
        _event("ParallelStateEntered", 40, "Evaluate SFT and train RFT"),
        # History lists the first branch, then the second
        _event("TaskStateEntered", 40, "Read SFT evaluation results"),
        _event("TaskStateExited", 60, "Read SFT evaluation results"),
        _event("TaskStateEntered", 40, "Resolve RFT checkpoint"),
        _event("TaskStateExited", 41, "Resolve RFT checkpoint"),
        _event("ParallelStateExited", 76, "Evaluate SFT and train RFT", output=output),
    ]

    lines = _view_lines(events)

    minutes = [line.split("]")[0] for line in lines]
    assert minutes == ["[+   40m", "[+   41m", "[+ 1h00m", "[+ 1h16m"]
    assert "✗ parallel  Evaluate SFT and train RFT" in lines[-1] and "failed: RFT training" in lines[-1]
