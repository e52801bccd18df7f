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
