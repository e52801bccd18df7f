"""Stage records: what ``run.json`` keeps of each job stage.

``stages.<baselineEval|sft|sftEval|rft|finalEval>`` always has ``status`` (``PENDING``,
``SKIPPED``, ``SUCCEEDED``, ``FAILED``, ``NOT_COMPLETED``), and once a job ran:
``jobName``, ``jobArn``, ``attempts``, ``startedAt``, ``endedAt``, ``checkpoint``
(training), ``metrics`` (evaluation), ``recipeUri``, ``outputUri``, ``modelLocation``
(what the job started from), the instance settings and the errors of earlier attempts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lambdas.pipeline.naming import STAGES

RECORD_FIELDS = ("status", "jobName", "checkpoint", "metrics", "startedAt", "endedAt")


def job_record(job: Mapping[str, Any], *, status: str, ended_at: str | None, **values: Any) -> dict[str, Any]:
    """The record of a stage whose job ran (or was attempted)."""
    request = job.get("request") or {}
    result = job.get("result") or {}
    record = {
        "status": status,
        "jobName": job.get("name"),
        "jobArn": result.get("arn"),
        "attempts": job.get("attempt"),
        "startedAt": job.get("startedAt"),
        "endedAt": ended_at,
        "checkpoint": None,
        "metrics": None,
        "recipeUri": request.get("recipeFile"),
        "outputUri": request.get("outputArchive"),
        "modelLocation": request.get("modelLocation"),
        "instanceType": request.get("instanceType"),
        "instanceCount": request.get("instanceCount"),
        "earlierAttempts": list(job.get("errors") or []),
    }
    record.update(values)
    return record


def with_stage(stages: Mapping[str, Any], stage: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``stages`` with ``stage`` replaced (all five stage keys always present)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    updated = {name: dict(stages.get(name) or {"status": "SKIPPED"}) for name in STAGES}
    updated[stage] = dict(record)
    return updated


def complete_records(stages: Mapping[str, Any] | None, *, unfinished: str) -> dict[str, dict]:
    """Every stage with every record field; ``PENDING`` stages become ``unfinished``."""
    complete: dict[str, dict] = {}
    for name in STAGES:
        record = dict((stages or {}).get(name) or {"status": "SKIPPED"})
        if record.get("status") == "PENDING":
            record["status"] = unfinished
        for field in RECORD_FIELDS:
            record.setdefault(field, None)
        complete[name] = record
    return complete
