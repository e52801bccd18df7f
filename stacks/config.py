"""Typed deployment settings, decided once in ``app.py`` and passed down as props.

No construct reads context or the environment itself: everything configurable
arrives through :class:`PipelineSettings`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from lambdas.pipeline.policy import RunPolicy
from lambdas.trigger.layout import RESERVED_PIPELINE_NAMES

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


_DIGITS = re.compile(r"[0-9]+")


class SettingsError(ValueError):
    """A context value in cdk.json (or passed with ``-c``) is invalid."""


def parse_bool(key: str, value: object) -> bool:
    """A boolean context value: a JSON boolean (cdk.json) or the string ``true``/``false`` (``-c``, which passes
    strings), nothing else, so that a typo cannot silently mean ``false``."""
    if isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    raise SettingsError(
        f"{key}={value!r}: not a boolean; use true or false (a JSON boolean in cdk.json, "
        f"or -c {key}=true / -c {key}=false)"
    )


def parse_int(key: str, value: object) -> int:
    """A whole-number context value: a JSON integer (cdk.json) or a string of digits (``-c``), nothing else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise SettingsError(
        f"{key}={value!r}: not a whole number; use a JSON integer in cdk.json, or digits only with -c, e.g. -c {key}=30"
    )


APPROVAL_MODES = ("none", "required")
DEFAULT_APPROVAL_TIMEOUT_HOURS = 72
# An approval must be decidable within one execution (stepfunctions.pipeline.MAX_RUN_SECONDS, 144 h), with the
# training before it: at most 96 h of waiting.
MAX_APPROVAL_TIMEOUT_HOURS = 96


def parse_approval(key: str, value: object) -> bool:
    """``approval``: ``none`` (deploy when the gate passes) or ``required`` (wait for a decision); ``True``
    when required. Nothing else is accepted, so a typo cannot silently skip the approval."""
    if value in APPROVAL_MODES:
        return value == "required"
    raise SettingsError(f"{key}={value!r}: use one of {', '.join(APPROVAL_MODES)}")


# Reserved concurrency (see PipelineSettings): enough for an RFT job's rollouts on each grader, and for the few
# stage functions a run calls at once (two Parallel branches, retries); Lambda's default account quota is 1,000.
DEFAULT_GRADER_RESERVED_CONCURRENCY = 50
DEFAULT_STAGE_RESERVED_CONCURRENCY = 5
MAX_RESERVED_CONCURRENCY = 1000


# What each ``writers`` entry guards in the data bucket (object-key patterns).
WRITER_AREAS = {
    "requests": "requests/*",
    "templates": "requests/templates/*",
    "datasets": "datasets/*_READY",
    "approvals": "approvals/*",
}
_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::(\d{12}|\*):[A-Za-z0-9+=,.@_/*:-]+$")


def parse_writers(key: str, value: object) -> dict[str, tuple[str, ...]]:
    """``writers``: area (:data:`WRITER_AREAS`) -> IAM principal ARNs allowed to write there; an area left out
    is left to the account's IAM policies."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as error:
            raise SettingsError(f"{key}: not a JSON object ({error})") from error
    if not isinstance(value, dict):
        raise SettingsError(f"{key}={value!r}: a JSON object of areas ({', '.join(WRITER_AREAS)}) to principal ARNs")
    problems: list[str] = []
    writers: dict[str, tuple[str, ...]] = {}
    for area, principals in value.items():
        if area not in WRITER_AREAS:
            problems.append(f"{key}.{area}: unknown area (allowed: {', '.join(WRITER_AREAS)})")
            continue
        if not isinstance(principals, list) or not principals:
            problems.append(f"{key}.{area}: a non-empty list of IAM principal ARNs, got {principals!r}")
            continue
        bad = [p for p in principals if not isinstance(p, str) or not _PRINCIPAL_ARN.match(p)]
        if bad:
            problems.append(f"{key}.{area}: not IAM principal ARNs: {bad!r} (e.g. arn:aws:iam::111122223333:role/Ops)")
            continue
        writers[area] = tuple(principals)
    if problems:
        raise SettingsError("; ".join(problems))
    return writers


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """What a deployment of the pipeline may vary.

    ``pipeline_name`` names the pipeline inside the account (runs, champion
    records and request prefixes are keyed by it); it is never used as a
    physical resource name.
    """

    pipeline_name: str = "nova"
    region: str = "us-east-1"
    account: str | None = None
    retain_data: bool = True
    log_retention_days: int = 90
    model_retention: int = 2  # custom models kept: the deployed one and the one rollback returns to
    notification_email: str | None = None
    retrain_schedule: str | None = None
    # Concurrent executions reserved for each reward function and each stage function (0: none reserved, the
    # function shares the account's unreserved pool). A reservation is also a ceiling: a grader never takes more.
    grader_reserved_concurrency: int = DEFAULT_GRADER_RESERVED_CONCURRENCY
    stage_reserved_concurrency: int = DEFAULT_STAGE_RESERVED_CONCURRENCY
    # approval / approvalTimeoutHours: a run whose gate passed waits for a decision before it deploys
    # (lambdas/pipeline/approval.py); without one within the timeout it ends as APPROVAL_EXPIRED.
    approval_required: bool = False
    approval_timeout_hours: int = DEFAULT_APPROVAL_TIMEOUT_HOURS

    # runPolicy: the limits every run of this deployment is held to (lambdas/pipeline/policy.py).
    run_policy: RunPolicy = field(default_factory=RunPolicy)
    # writers: who may write requests, templates, _READY markers and approvals (empty: the account's IAM decides).
    writers: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems: list[str] = []
        for key, value in (
            ("graderReservedConcurrency", self.grader_reserved_concurrency),
            ("stageReservedConcurrency", self.stage_reserved_concurrency),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_RESERVED_CONCURRENCY:
                problems.append(f"{key}={value!r}: a whole number from 0 (none reserved) to {MAX_RESERVED_CONCURRENCY}")
        hours = self.approval_timeout_hours
        if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= MAX_APPROVAL_TIMEOUT_HOURS:
            problems.append(
                f"approvalTimeoutHours={hours!r}: a whole number of hours from 1 to {MAX_APPROVAL_TIMEOUT_HOURS}"
            )
        if not isinstance(self.approval_required, bool):
            problems.append(f"approval={self.approval_required!r}: use one of {', '.join(APPROVAL_MODES)}")
        # Typed values only: a string here would be truthy ("false") or fail a comparison.
        if not isinstance(self.retain_data, bool):
            problems.append(f"retainData={self.retain_data!r}: not a boolean; use true or false")
        if not isinstance(self.log_retention_days, int) or isinstance(self.log_retention_days, bool):
            problems.append(f"logRetentionDays={self.log_retention_days!r}: not a whole number of days")
        elif self.log_retention_days <= 0:
            problems.append(f"logRetentionDays={self.log_retention_days}: must be a positive number of days")
        if not isinstance(self.model_retention, int) or isinstance(self.model_retention, bool):
            problems.append(f"modelRetention={self.model_retention!r}: not a whole number of models")
        elif self.model_retention < 1:
            problems.append(f"modelRetention={self.model_retention}: keep at least 1 model (the deployed one)")
        if not _NAME_PATTERN.match(self.pipeline_name):
            problems.append(f"pipelineName={self.pipeline_name!r}: use 3-32 lowercase letters, digits or '-'")
        if self.pipeline_name in RESERVED_PIPELINE_NAMES:
            problems.append(
                f"pipelineName={self.pipeline_name!r}: reserved (requests/{self.pipeline_name}/ holds "
                "rejected requests or request templates)"
            )
        if self.notification_email is not None and not _EMAIL_PATTERN.match(self.notification_email):
            problems.append(f"notificationEmail={self.notification_email!r}: not an email address")
        if self.retrain_schedule is not None and not (
            self.retrain_schedule.startswith("cron(") or self.retrain_schedule.startswith("rate(")
        ):
            problems.append(
                f"retrainSchedule={self.retrain_schedule!r}: use an EventBridge Scheduler expression, "
                "e.g. 'cron(0 3 ? * MON *)' or 'rate(7 days)'"
            )
        if problems:
            raise SettingsError("invalid context: " + "; ".join(problems))
