"""GPU instance quotas: can the account run the jobs of the plan at all, and at once?

SageMaker caps how many instances of each type the account's training jobs may use at
the same time: the Service Quotas quota ``<instance type> for training job usage``
(service code ``sagemaker``), which is 0 for the large GPU types in many accounts until
an increase is approved. Nova evaluation jobs are training jobs too, so they count
against the same quotas.

Jobs run in three phases (the state machine's Parallel states):
``baseline evaluation ∥ SFT``, ``SFT evaluation ∥ RFT``, then ``final evaluation``.
For every instance type the plan uses, :func:`instance_needs` gives the largest single
job and the peak of one phase. :func:`check_quotas` then decides:

- a job that alone needs more instances than the quota can never start: a problem, so
  preflight fails before anything is paid for (the state machine would otherwise retry
  ``ResourceLimitExceeded`` with backoff and fail hours later);
- jobs of one phase that together exceed the quota contend: the later one gets
  ``ResourceLimitExceeded`` and retries with backoff until its sibling has ended
  (:func:`lambdas.pipeline.jobs.max_attempts`), so they run one after the other; this is
  a warning in the preflight summary, not a failure;
- a quota that cannot be read (no permission, throttling, not listed for the region) is
  reported as ``unchecked`` with the reason; it never fails a run by itself, and the
  quotas that were read before a failure are still checked.

Quotas are read with ``ListServiceQuotas`` (values applied to the account) and, for
names it does not return, ``ListAWSDefaultServiceQuotas`` (the AWS default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.common.aws_errors import error_code
from lambdas.pipeline.naming import STAGE_LABELS, STAGE_METHODS, STAGE_PHASES
from lambdas.pipeline.schema import BusiestPhase, LargestJob, Plan, QuotaEntry, QuotaSummary

SERVICE_CODE = "sagemaker"
# Where the run input sets each method's instances.
SETTINGS_FIELDS = {"sft": "sft", "rft": "rft", "eval": "evaluation"}


def quota_name(instance_type: str) -> str:
    """The Service Quotas name of the training-job quota of ``instance_type``."""
    return f"{instance_type} for training job usage"


@dataclass(frozen=True)
class InstanceNeed:
    """How many instances of one type the plan needs: one job at most, and one phase at most."""

    instance_type: str
    largest: int
    largest_stage: str
    peak: int
    peak_stages: tuple[str, ...]


def instance_needs(plan: Plan) -> dict[str, InstanceNeed]:
    """Per instance type: the largest job and the busiest phase of the stages the plan runs."""
    largest: dict[str, tuple[int, str]] = {}
    peaks: dict[str, tuple[int, tuple[str, ...]]] = {}
    for phase in STAGE_PHASES:
        in_phase: dict[str, list[tuple[str, int]]] = {}
        for stage in phase:
            if not plan.enabled.runs(stage):
                continue
            job = plan.jobs.of(STAGE_METHODS[stage])
            kind, count = job.instances()
            in_phase.setdefault(kind, []).append((stage, count))
            if count > largest.get(kind, (0, ""))[0]:
                largest[kind] = (count, stage)
        for kind, jobs in in_phase.items():
            total = sum(count for _, count in jobs)
            if total > peaks.get(kind, (0, ()))[0]:
                peaks[kind] = (total, tuple(stage for stage, _ in jobs))
    return {
        kind: InstanceNeed(kind, largest[kind][0], largest[kind][1], peaks[kind][0], peaks[kind][1])
        for kind in sorted(largest)
    }


class QuotaLookupError(RuntimeError):
    """Service Quotas could not be read (permissions, throttling, the service failing).

    ``found`` holds what was read before the failure: those quotas are still checked.
    """

    def __init__(self, message: str, found: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.found = dict(found or {})


def service_quotas_lookup(client: Any) -> Callable[[Iterable[str]], dict[str, dict[str, Any]]]:
    """``lookup(names)`` -> ``{name: {"value", "code", "source"}}`` for the names Service Quotas knows.

    Applied values come first; names the account has no applied value for fall back to the
    AWS default. Paging stops as soon as every name is found.
    """

    def lookup(names: Iterable[str]) -> dict[str, dict[str, Any]]:
        from botocore import xform_name
        from botocore.exceptions import BotoCoreError, ClientError

        wanted = set(names)
        found: dict[str, dict[str, Any]] = {}
        for operation, source in (("ListServiceQuotas", "applied"), ("ListAWSDefaultServiceQuotas", "default")):
            if wanted <= found.keys():
                break
            try:
                pages = client.get_paginator(xform_name(operation)).paginate(
                    ServiceCode=SERVICE_CODE, PaginationConfig={"PageSize": 100}
                )
                for page in pages:
                    for quota in page.get("Quotas", []):
                        name = quota.get("QuotaName")
                        if name in wanted and name not in found and isinstance(quota.get("Value"), (int, float)):
                            found[name] = {"value": quota["Value"], "code": quota.get("QuotaCode"), "source": source}
                    if wanted <= found.keys():
                        break
            except (BotoCoreError, ClientError) as error:
                code = error_code(error) or type(error).__name__
                raise QuotaLookupError(f"{operation} failed: {code}: {error}", found) from error
        return found

    return lookup


def _count(value: float) -> str:
    return f"{value:g}"


def check_quotas(
    plan: Plan, lookup: Callable[[Iterable[str]], Mapping[str, Mapping[str, Any]]]
) -> tuple[list[str], QuotaSummary]:
    """(problems, summary) of the plan's instance needs against the account's quotas."""
    needs = instance_needs(plan)
    if not needs:
        return [], QuotaSummary(status="not needed")
    summary = QuotaSummary(status="checked")
    failure = None
    try:
        quotas = lookup([quota_name(kind) for kind in needs])
    except QuotaLookupError as error:
        quotas, failure = error.found, str(error)

    problems: list[str] = []
    unlisted = []
    for need in needs.values():
        quota = quotas.get(quota_name(need.instance_type))
        summary.instanceTypes.append(_entry(need, quota))
        if quota is None:
            unlisted.append(quota_name(need.instance_type))
            continue
        value, code = quota["value"], quota.get("code")
        label = f"quota {quota_name(need.instance_type)!r}" + (f" ({code})" if code else "")
        if need.largest > value:
            field = SETTINGS_FIELDS[STAGE_METHODS[need.largest_stage]]
            fix = f"lower {field}.instanceCount" if field != "evaluation" else f"choose another {field}.instanceType"
            problems.append(
                f"{label} is {_count(value)} in this account and region; the {STAGE_LABELS[need.largest_stage]} job "
                f"alone needs {need.largest} x {need.instance_type}: request an increase in the Service Quotas "
                f"console or {fix}"
            )
        elif need.peak > value:
            together = " and ".join(STAGE_LABELS[s] for s in need.peak_stages)
            summary.warnings.append(
                f"{label} is {_count(value)}; {together} run at the same time and need {need.peak} x "
                f"{need.instance_type} together: they will run one after the other (the later job retries until "
                f"capacity frees up), which lengthens the run; a quota of {need.peak} lets them run side by side"
            )
    if unlisted:
        summary.status = "unchecked" if len(unlisted) == len(needs) else "partly checked"
        names = ", ".join(repr(n) for n in unlisted)
        summary.reason = (
            f"{names} not read: {failure}" if failure else f"Service Quotas lists no {names} in this region"
        )
    return problems, summary


def _entry(need: InstanceNeed, quota: Mapping[str, Any] | None) -> QuotaEntry:
    return QuotaEntry(
        instanceType=need.instance_type,
        quotaName=quota_name(need.instance_type),
        quotaCode=quota.get("code") if quota else None,
        quota=quota["value"] if quota else None,
        source=quota.get("source") if quota else None,
        largestJob=LargestJob.model_validate({"stage": need.largest_stage, "instances": need.largest}),
        peak=BusiestPhase.model_validate({"stages": list(need.peak_stages), "instances": need.peak}),
    )
