"""``novactl validate``: what "Validate run" and "Preflight checks" would report, before a run is started.

The run input goes through :func:`lambdas.pipeline.plan.resolve_plan` and the plan through
:func:`lambdas.pipeline.preflight.run_preflight`, the functions the two states call, with the datasets read
from a local folder (each dataset URI served from the file of the same name) or from S3. The grader smoke test
runs the grader preset in-process; GPU quotas are read from Service Quotas only with ``--aws`` (offline they
are reported as unchecked). Nothing is written: the copy preflight makes of each dataset is skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from lambdas.common.aws_errors import is_access_denied, is_missing
from lambdas.pipeline import plan as plans
from lambdas.pipeline import preflight
from lambdas.pipeline.naming import STAGE_LABELS, STAGE_METHODS, STAGE_PHASES
from lambdas.pipeline.schema import CostEstimate, CostItem, Execution, Plan, PreflightSummary
from lambdas.pipeline.validation import RunInputError
from rehearsal.datasets import in_bucket

PIPELINE = "nova"
OFFLINE_BUCKET = "offline-artifacts"
OFFLINE_DATA_BUCKET = "offline-data"


class LocalObjects:
    """The S3 calls validation makes, answered from files: ``s3://<any bucket>/<key>`` is ``folder/<file name>``."""

    def __init__(self, folder: Path, records: S3Objects | None = None) -> None:
        self.folder = folder
        self.records = records

    def path(self, key: str) -> Path:
        return self.folder / PurePosixPath(key).name

    def head(self, bucket: str, key: str) -> Mapping[str, Any]:
        path = self.path(key)
        if not path.is_file():
            raise LookupError(f"looked for {path}")
        digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        return {"ContentLength": path.stat().st_size, "ETag": digest}

    def read(self, bucket: str, key: str) -> bytes:
        """An earlier run's record: from the artifacts bucket with ``records`` (``--aws``), else not found."""
        if self.records is None:
            raise LookupError(key)
        return self.records.read(bucket, key)

    def get_object(self, **request: Any) -> dict[str, Any]:
        return {"Body": self.path(request["Key"]).open("rb")}


class S3Objects:
    """The same calls against S3 (read only)."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    def _call(self, operation: Callable[..., Any], **request: Any) -> Any:
        from botocore.exceptions import ClientError

        try:
            return operation(**request)
        except ClientError as error:
            if is_missing(error):
                raise LookupError(request["Key"]) from None
            if is_access_denied(error):
                raise PermissionError(request["Key"]) from None
            raise

    def head(self, bucket: str, key: str) -> Mapping[str, Any]:
        head: Mapping[str, Any] = self._call(self.s3.head_object, Bucket=bucket, Key=key)
        return head

    def read(self, bucket: str, key: str) -> bytes:
        body = self._call(self.s3.get_object, Bucket=bucket, Key=key)["Body"]
        try:
            data: bytes = body.read(plans.MAX_RUN_RECORD_BYTES + 1)
        finally:
            body.close()
        return data

    def get_object(self, **request: Any) -> dict[str, Any]:
        found: dict[str, Any] = self._call(self.s3.get_object, **request)
        return found


class _ReadOnly:
    """What preflight is given as S3: reads go to the objects, the staging copy is skipped."""

    def __init__(self, objects: LocalObjects | S3Objects) -> None:
        self.objects = objects

    def get_object(self, **request: Any) -> dict[str, Any]:
        return self.objects.get_object(**request)

    def copy(self, **request: Any) -> None:
        return None


@dataclass
class Checked:
    """What validation found: every problem, and the plan and preflight summary when it got that far."""

    problems: list[str] = field(default_factory=list)
    plan: Plan | None = None
    summary: PreflightSummary | None = None
    quotas_read: bool = True
    cost: CostEstimate | None = None  # preflight's estimate when it found problems


def _grader_names() -> dict[str, str]:
    from lambdas.reward.presets import list_presets

    return {name: f"preset:{name}" for name in list_presets()}


def _grader_version(name: str) -> str | None:
    from lambdas.reward.presets import load_preset

    return load_preset(name).version


def _grader_spec(name: str) -> dict[str, Any]:
    from lambdas.reward.presets import load_preset

    spec: dict[str, Any] = load_preset(name).spec
    return spec


def _local_grader(arn: str) -> Callable[[list[Any]], list[Any]]:
    from lambdas.reward.config import reward_function

    grade: Callable[[list[Any]], list[Any]] = reward_function(preset=arn.removeprefix("preset:"))
    return grade


def _no_quotas(names: Iterable[str] | None, service_code: str = "sagemaker") -> dict[str, dict[str, Any]]:
    return {}


def validate(
    run_input: object,
    *,
    objects: LocalObjects | S3Objects,
    data_bucket: str | None = None,
    artifacts_bucket: str = OFFLINE_BUCKET,
    pipeline_name: str = PIPELINE,
    account: str | None = None,
    region: str = "us-east-1",
    quota_lookup: Callable[..., Mapping[str, Mapping[str, Any]]] = _no_quotas,
) -> Checked:
    """Run the checks of the pipeline's first two states; every problem is returned, none raised."""
    from lambdas.reward.verify import verify_grader

    checked = Checked(quotas_read=quota_lookup is not _no_quotas)
    arn = f"arn:aws:states:{region}:{account}:execution:{pipeline_name}:validate" if account else None
    if data_bucket is None:
        # Offline there is no data bucket yet: the dataset URIs are moved into a stand-in (as start moves them
        # into the stack's), so only their keys and files are checked.
        data_bucket = OFFLINE_DATA_BUCKET
        if isinstance(run_input, dict):
            run_input = in_bucket(run_input, data_bucket)
    try:
        plan, _ = plans.resolve_plan(
            run_input,
            execution=Execution(id=arn, name="validate"),
            pipeline_name=pipeline_name,
            data_bucket=data_bucket,
            artifacts_bucket=artifacts_bucket,
            graders=_grader_names(),
            grader_version=_grader_version,
            head_object=objects.head,
            read_object=objects.read,
        )
    except RunInputError as error:
        checked.problems = list(error.problems)
        return checked
    checked.plan = plan
    try:
        checked.summary = preflight.run_preflight(
            plan,
            s3=_ReadOnly(objects),
            grade_batch_for=_local_grader,
            verify_grader=verify_grader,
            grader_spec=_grader_spec,
            quota_lookup=quota_lookup,
        )
    except preflight.PreflightError as error:
        checked.problems = list(error.problems)
        checked.summary = None
        checked.cost = error.cost
    return checked


def worst_case_hours(plan: Plan) -> float:
    """The longest the run's jobs can take: per phase the longest job's maximum runtime, phases one after another.

    On the Bedrock road only the customization jobs have a maximum runtime (the Task stops them); an evaluation
    there runs until every row is answered, so it is left out (:func:`worst_case_text` says so)."""
    total = 0.0
    for phase in STAGE_PHASES:
        hours = [
            plan.jobs.of(STAGE_METHODS[s]).maxRuntimeSeconds / 3600
            for s in phase
            if plan.enabled.runs(s) and not (plan.platform == "bedrock" and STAGE_METHODS[s] == "eval")
        ]
        total += max(hours, default=0.0)
    return total


def worst_case_text(plan: Plan) -> str:
    """The worst-case duration and what it counts."""
    if plan.platform == "bedrock":
        return (
            f"{worst_case_hours(plan):g} h (the customization jobs for their maximum runtime; evaluations through "
            "Bedrock inference have none: they run until every row is answered)"
        )
    return f"{worst_case_hours(plan):g} h (every job for its maximum runtime)"


def expected_hours(plan: Plan, cost: CostEstimate) -> float | None:
    """The expected duration of the run's jobs: per phase the longest job's estimate (capped at its maximum
    runtime), phases one after another; None when a job could not be estimated."""
    by_stage: dict[str, CostItem] = {item.stage: item for item in cost.items}
    total = 0.0
    for phase in STAGE_PHASES:
        hours = []
        for stage in phase:
            item = by_stage.get(stage)
            if not plan.enabled.runs(stage) or item is None:
                continue
            if item.estimatedHours is None:
                return None
            hours.append(min(item.estimatedHours, item.maxHours))
        total += max(hours, default=0.0)
    return total


def summary_lines(checked: Checked) -> list[str]:
    """The cost and duration estimate, the datasets, the grader check and the quotas, one line each."""
    lines: list[str] = []
    plan, summary = checked.plan, checked.summary
    if plan is None:
        return lines
    # Preflight's figures (with the datasets' row counts) when it ran, else what the plan alone gives.
    cost = summary.cost if summary is not None else checked.cost or preflight.estimate_cost(plan)
    expected = f"${cost.expectedUsd:,.2f}" if cost.expectedUsd is not None else "not estimated (needs row counts)"
    lines.append(
        f"{'Bedrock' if plan.platform == 'bedrock' else 'GPU'} cost: expected {expected}; worst case "
        f"${cost.estimatedUsd:,.2f} of the ${cost.maxUsd:,.2f} budget"
    )
    for item in cost.items:
        if item.unit is not None:  # Bedrock: priced per unit, not per instance-hour
            expected_usd = "not estimated" if item.expectedUsd is None else f"${item.expectedUsd:,.2f}"
            lines.append(f"  {preflight.cost_item_text(item)} at most; expected {expected_usd}: {item.basis}")
            continue
        guess = (
            f"expected {item.estimatedHours:g} h = ${item.expectedUsd:,.2f}"
            if item.estimatedHours is not None and item.expectedUsd is not None
            else "expected: not estimated"
        )
        lines.append(
            f"  {STAGE_LABELS[item.stage]}: {item.instanceCount} x {item.instanceType}: {guess}; "
            f"at most {item.maxHours:g} h = ${item.usd:,.2f}"
        )
    lines.extend(f"  warning: {w}" for w in cost.runtimeWarnings)
    lines.extend(f"  note: {n}" for n in cost.priceNotes)
    hours = expected_hours(plan, cost)
    lines.append(
        f"Duration of the jobs: expected {'not estimated' if hours is None else f'{hours:.1f} h'}; worst case "
        f"{worst_case_text(plan)}"
    )
    if plan.dryRun:
        lines.append("dryRun: the run stops after preflight (no GPU)")
    if summary is None:
        return lines
    for name, report in summary.datasets.items():
        lines.append(f"Dataset {name} ({report.kind}): {report.rows} valid rows, {report.bytes} bytes")
        lines.extend(f"  warning: {w}" for w in report.warnings)
    if summary.leakage is not None:
        lines.extend(f"Leakage warning: {w}" for w in summary.leakage.warnings)
    if summary.grader is not None:
        verdict = "passed" if summary.grader.passed else "failed"
        lines.append(f"Grader {summary.grader.name}: smoke test {verdict} on {summary.grader.rowsSampled} rows")
    quotas = "Bedrock quotas" if plan.platform == "bedrock" else "GPU quotas"
    if not checked.quotas_read:
        lines.append(f"{quotas}: not checked offline (validate --aws reads the account's Service Quotas)")
        return lines
    lines.append(
        f"{quotas}: {summary.quotas.status}" + (f" ({summary.quotas.reason})" if summary.quotas.reason else "")
    )
    lines.extend(
        f"  {q.quotaName or q.need}: {'not read' if q.quota is None else f'{q.quota:g}'} (the run needs {q.needed:g})"
        for q in summary.quotas.bedrock
    )
    lines.extend(f"  warning: {w}" for w in summary.quotas.warnings)
    return lines
