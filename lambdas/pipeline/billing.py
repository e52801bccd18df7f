"""The actual GPU cost of a run's training jobs (docs/contracts/training-jobs.md, "Billable time").

SageMaker bills a training job ``BillableTimeInSeconds`` x ``InstanceCount`` instance-seconds.
A stage may take several attempts; every attempt that ran is paid, failed ones included:

- a finished attempt: the step after the job reads its description (``DescribeTrainingJob``) and keeps its
  ``BillableTimeInSeconds`` in ``$.job.result.billableSeconds`` (``handlers._with_billable_seconds``);
- a failed attempt: the caught ``Cause`` is the job's description as JSON, which carries
  ``BillableTimeInSeconds`` when the job got as far as billing. A refused ``CreateTrainingJob`` (its
  cause is the service's message) or a description without the field leaves the seconds unknown: the
  attempt counts 0 seconds and is counted in ``unknownBillingAttempts`` instead of being guessed.

The job keeps a running total of its earlier attempts (``billableSeconds``, ``unknownBillingAttempts``)
rather than a list, so the execution state stays bounded however many attempts a stage takes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from lambdas.pipeline.catalog import INSTANCE_PRICE_USD_PER_HOUR
from lambdas.pipeline.schema import JobAttempt, StageRecord, StepError


def seconds_from_cause(error: StepError | None) -> int | None:
    """``BillableTimeInSeconds`` of a failed attempt's job description, or None when the cause lacks it."""
    try:
        described = json.loads((error.Cause if error else None) or "")
    except ValueError:
        return None
    seconds = described.get("BillableTimeInSeconds") if isinstance(described, dict) else None
    return seconds if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds >= 0 else None


def attempt_seconds(job: JobAttempt) -> int | None:
    """Billable seconds of the job's current attempt: 0 when no job was created for it, None when unknown."""
    if not job.name:
        return 0
    if job.result is not None and job.result.billableSeconds is not None:
        return job.result.billableSeconds
    if job.lastError is None:
        return None
    return seconds_from_cause(job.lastError)


def totals(job: JobAttempt) -> tuple[int, int]:
    """``(billable seconds, attempts whose seconds are unknown)`` over every attempt of ``job``."""
    current = attempt_seconds(job)
    return job.billableSeconds + (current or 0), job.unknownBillingAttempts + (current is None)


def usd(seconds: int, instance_type: str | None, instance_count: int | None) -> float | None:
    """Seconds x instances x the catalog's hourly price; None for an instance type the catalog does not price."""
    price = INSTANCE_PRICE_USD_PER_HOUR.get(instance_type or "")
    if price is None:
        return None
    return round(seconds * (instance_count or 1) * price / 3600, 2)


def run_actual(records: Iterable[StageRecord]) -> tuple[float, int, int]:
    """``(USD, billable instance-seconds, attempts of unknown cost)`` over the stages whose jobs ran."""
    total, instance_seconds, unknown = 0.0, 0, 0
    for record in records:
        unknown += record.unknownBillingAttempts
        if record.billableSeconds is None:
            continue
        instance_seconds += record.billableSeconds * (record.instanceCount or 1)
        if record.actualUsd is None:
            unknown += 1 if record.billableSeconds else 0
        else:
            total += record.actualUsd
    return round(total, 2), instance_seconds, unknown
