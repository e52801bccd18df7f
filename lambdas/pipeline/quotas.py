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

On the Bedrock road (``plan.platform == "bedrock"``) no GPU is used: :func:`check_bedrock_quotas`
reads the ``bedrock`` service's quotas instead (every one, then picks those of :data:`BEDROCK_NEEDS` by
the words of their names, because Service Quotas names them per model) and compares each with what the
run needs: one customization job at a time, one custom model per training stage, one on-demand
deployment per candidate evaluation plus the serving one, and the records a training file may hold
(passed on to the dataset rules). Sources and names: docs/contracts/bedrock-customization.md ("Quotas").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from lambdas.common.aws_errors import error_code
from lambdas.pipeline.datasets import BEDROCK_ROWS
from lambdas.pipeline.naming import STAGE_LABELS, STAGE_METHODS, STAGE_PHASES
from lambdas.pipeline.schema import BusiestPhase, LargestJob, Plan, QuotaEntry, QuotaSummary, ServiceQuota

SERVICE_CODE = "sagemaker"
BEDROCK_SERVICE_CODE = "bedrock"


class QuotaLookup(Protocol):
    """``lookup(names)``: the named quotas of ``service_code``; ``lookup(None, ...)``: all of them."""

    def __call__(self, names: Iterable[str] | None, service_code: str = ...) -> Mapping[str, Mapping[str, Any]]: ...


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


def service_quotas_lookup(client: Any) -> QuotaLookup:
    """``lookup(names, service_code)`` -> ``{name: {"value", "code", "source"}}`` for the names Service Quotas knows.

    Applied values come first; names the account has no applied value for fall back to the
    AWS default. Paging stops as soon as every name is found. ``names=None`` reads every quota of the service.
    """

    def lookup(names: Iterable[str] | None, service_code: str = SERVICE_CODE) -> dict[str, dict[str, Any]]:
        from botocore import xform_name
        from botocore.exceptions import BotoCoreError, ClientError

        wanted = None if names is None else set(names)
        found: dict[str, dict[str, Any]] = {}
        for operation, source in (("ListServiceQuotas", "applied"), ("ListAWSDefaultServiceQuotas", "default")):
            if wanted is not None and wanted <= found.keys():
                break
            try:
                pages = client.get_paginator(xform_name(operation)).paginate(
                    ServiceCode=service_code, PaginationConfig={"PageSize": 100}
                )
                for page in pages:
                    for quota in page.get("Quotas", []):
                        name = quota.get("QuotaName")
                        if (
                            (wanted is None or name in wanted)
                            and isinstance(name, str)
                            and name not in found
                            and isinstance(quota.get("Value"), (int, float))
                        ):
                            found[name] = {"value": quota["Value"], "code": quota.get("QuotaCode"), "source": source}
                    if wanted is not None and wanted <= found.keys():
                        break
            except (BotoCoreError, ClientError) as error:
                code = error_code(error) or type(error).__name__
                raise QuotaLookupError(f"{operation} failed: {code}: {error}", found) from error
        return found

    return lookup


def _read(
    lookup: Callable[[], Mapping[str, Mapping[str, Any]]],
) -> tuple[Mapping[str, Mapping[str, Any]], str | None]:
    """The quotas read, and why reading stopped early (what was read before a failure is kept)."""
    try:
        return lookup(), None
    except QuotaLookupError as error:
        return error.found, str(error)


def _count(value: float) -> str:
    return f"{value:g}"


def check_quotas(plan: Plan, lookup: QuotaLookup) -> tuple[list[str], QuotaSummary]:
    """(problems, summary) of the plan's instance needs (Bedrock: its Bedrock needs) against the account's quotas."""
    if plan.platform == "bedrock":
        return check_bedrock_quotas(plan, lookup)
    needs = instance_needs(plan)
    if not needs:
        return [], QuotaSummary(status="not needed")
    summary = QuotaSummary(status="checked")
    quotas, failure = _read(lambda: lookup([quota_name(kind) for kind in needs]))

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


# -- Bedrock -------------------------------------------------------------------------------------------

# The words that pick a model's quotas out of Service Quotas' names, e.g. "... for a Nova 2 Lite ...".
_MODEL_WORDS = {
    "nova-micro": ({"nova", "micro"}, set()),
    "nova-lite": ({"nova", "lite"}, {"2", "2.0"}),
    "nova-pro": ({"nova", "pro"}, set()),
    "nova-2-lite": ({"nova", "lite"}, set()),
}


def _words(name: str) -> set[str]:
    """The words of a quota's name after its category: "(Model customization) Concurrent model import jobs" is
    not about customization jobs."""
    name = name.lower()
    if name.startswith("(") and ")" in name:
        name = name.split(")", 1)[1]
    return set(name.replace("(", " ").replace(")", " ").replace("-", " ").split())


def _for_model(words: set[str], model: str) -> bool:
    required, excluded = _MODEL_WORDS[model]
    if model == "nova-2-lite":
        return required <= words and bool(words & {"2", "2.0"})
    return required <= words and not words & excluded


def _records_quota(method: str, model: str) -> Callable[[str], bool]:
    """The quota on the records of one ``method`` training file for ``model``."""

    def match(name: str) -> bool:
        words = _words(name)
        if not {"training", "records"} <= words or not _for_model(words, model):
            return False
        return ("reinforcement" in words) == (method == "rft")

    return match


def _customization_jobs(name: str) -> bool:
    words = _words(name)
    return "customization" in words and "jobs" in words and bool(words & {"concurrent", "scheduled"})


def _custom_models(name: str) -> bool:
    lowered = name.lower()
    return "custom models" in lowered and "import" not in lowered and "deployment" not in lowered


def _custom_model_deployments(name: str) -> bool:
    lowered = name.lower()
    return "custom model deployments" in lowered and "provisioned" not in lowered


@dataclass(frozen=True)
class BedrockNeed:
    """What a run needs of one Bedrock quota, and how to find that quota among the service's names."""

    need: str
    needed: int
    match: Callable[[str], bool]
    fix: str
    records: str | None = None  # the training file (sft, rft) whose record limit this quota is


def bedrock_needs(plan: Plan) -> list[BedrockNeed]:
    """The Bedrock quotas the plan's stages depend on, with what the run needs of each."""
    training = [m for m in ("sft", "rft") if plan.enabled.runs(m)]
    candidates = [s for s in ("sftEval", "finalEval") if plan.enabled.runs(s)]
    needs: list[BedrockNeed] = []
    if training:
        needs.append(
            BedrockNeed(
                "model customization jobs at once (SFT and RFT run one after the other)",
                1,
                _customization_jobs,
                "wait for other customization jobs of the account to end, or request an increase",
            )
        )
        needs.append(
            BedrockNeed(
                f"custom models the run creates ({', '.join(m.upper() for m in training)})",
                len(training),
                _custom_models,
                "delete custom models no longer needed, or request an increase",
            )
        )
    if candidates:
        needs.append(
            BedrockNeed(
                "on-demand custom model deployments (one per candidate evaluation, plus the serving one)",
                len(candidates) + (1 if plan.enabled.deploy else 0),
                _custom_model_deployments,
                "delete unused custom model deployments, or request an increase",
            )
        )
    for method in training:
        least, _ = BEDROCK_ROWS.get((method, plan.model.key), (0, 0))
        needs.append(
            BedrockNeed(
                f"training records per {method.upper()} job on {plan.model.key}",
                least,
                _records_quota(method, plan.model.key),
                "request an increase",
                records=method,
            )
        )
    return needs


def record_limits(summary: QuotaSummary) -> dict[str, tuple[int, str]]:
    """Training file -> (the account's record quota, its name), for the record quotas that were read."""
    limits: dict[str, tuple[int, str]] = {}
    for entry in summary.bedrock:
        if entry.need.startswith("training records per ") and entry.quota is not None and entry.quotaName:
            method = entry.need.split()[3].lower()
            limits[method] = (int(entry.quota), entry.quotaName)
    return limits


def check_bedrock_quotas(plan: Plan, lookup: QuotaLookup) -> tuple[list[str], QuotaSummary]:
    """(problems, summary) of the plan's Bedrock needs against the account's ``bedrock`` quotas."""
    needs = bedrock_needs(plan)
    if not needs:
        return [], QuotaSummary(status="not needed")
    summary = QuotaSummary(status="checked")
    quotas, failure = _read(lambda: lookup(None, service_code=BEDROCK_SERVICE_CODE))
    problems: list[str] = []
    unread: list[str] = []
    for need in needs:
        name = next((n for n in sorted(quotas) if need.match(n)), None)
        quota = quotas.get(name) if name else None
        summary.bedrock.append(
            ServiceQuota(
                need=need.need,
                needed=need.needed,
                quotaName=name,
                quotaCode=quota.get("code") if quota else None,
                quota=quota["value"] if quota else None,
                source=quota.get("source") if quota else None,
            )
        )
        if quota is None:
            unread.append(need.need)
            continue
        if need.needed > quota["value"]:
            code = f" ({quota['code']})" if quota.get("code") else ""
            problems.append(
                f"Bedrock quota {name!r}{code} is {_count(quota['value'])} in this account and region; the run "
                f"needs {need.needed} {need.need}: {need.fix} in the Service Quotas console"
            )
    if unread:
        summary.status = "unchecked" if len(unread) == len(needs) else "partly checked"
        what = "; ".join(unread)
        summary.reason = (
            f"Bedrock quotas for {what} not read: {failure}"
            if failure
            else f"Service Quotas lists no Bedrock quota for {what} in this region"
        )
    return problems, summary
