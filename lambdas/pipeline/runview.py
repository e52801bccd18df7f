"""A read-only view of a run record (``runs/<run-id>/run.json``) for notifications and reports.

The notification (``lambdas/notify/message.py``) and the HTML report (``lambdas/pipeline/report.py``)
show the same facts from a :class:`lambdas.pipeline.schema.RunRecord`: the metrics table (baseline
vs SFT vs RFT), the gate decision, stage timings and console links. Records of failed, aborted or
gate-rejected runs lack some of them (skipped stages, no metrics, no deployment). Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from lambdas.pipeline import billing
from lambdas.pipeline.naming import STAGES, stage_title
from lambdas.pipeline.schema import MetricStats, RunRecord, StageRecord

# Which stage's metrics stand for which model in the comparison.
_SERIES = (("baseline", "Baseline", "baselineEval"), ("sft", "SFT", "sftEval"), ("rft", "RFT", "finalEval"))


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    stage: str


@dataclass(frozen=True)
class MetricsTable:
    """Rows of ``metric -> value per series`` (``None`` where a series has no value), and how each value
    averaged over per-sample results was measured (``stats[series][metric]``: samples, standard error)."""

    series: list[Series]
    rows: list[tuple[str, dict[str, float | None]]]
    stats: dict[str, dict[str, MetricStats]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def cell(self, metric: str, series: str, value: float | None) -> str:
        """The value, with ``± <standard error>`` when it is a mean over samples."""
        measured = self.stats.get(series, {}).get(metric)
        if value is None or measured is None or measured.stderr is None:
            return format_value(value)
        return f"{format_value(value)} ± {format_value(measured.stderr)}"

    def samples(self) -> dict[str, int]:
        """How many samples each series' averaged metrics come from (series without any are left out)."""
        return {key: max(s.n for s in by_metric.values()) for key, by_metric in self.stats.items() if by_metric}


@dataclass(frozen=True)
class StageView:
    key: str
    label: str
    status: str
    job_name: str | None
    checkpoint: str | None
    started: datetime | None
    ended: datetime | None
    # What the stage's job attempts cost (job stages only): :func:`stage_cost`.
    cost: str = "-"

    @property
    def duration_seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return max(0.0, (self.ended - self.started).total_seconds())


_ROADS = {
    "sagemaker": "Amazon SageMaker training jobs",
    "bedrock": "Amazon Bedrock model customization jobs, evaluated through Bedrock inference",
}


def platform(run: RunRecord) -> str:
    """The road the run's jobs took: ``plan.platform``; a record without a plan (the input failed validation) is
    of the road its input asked for, else of the SageMaker road."""
    if run.plan is not None:
        return run.plan.platform
    asked = run.input.get("platform") if isinstance(run.input, dict) else None
    return asked if asked in _ROADS else "sagemaker"


def road_text(run: RunRecord) -> str:
    return _ROADS.get(platform(run), platform(run))


@dataclass(frozen=True)
class BedrockResource:
    """A resource of the Bedrock road a stage made: its customization job, custom model or provisional deployment,
    and what became of it (``fate``: the provisional deployments' outcome when the run was recorded)."""

    stage: str
    kind: str
    arn: str
    fate: str | None = None

    def text(self) -> str:
        """One line of plain text: ``<stage> <kind>: <ARN> (<fate>)``."""
        return f"{self.stage} {self.kind}: {self.arn}" + (f" ({self.fate})" if self.fate else "")


def bedrock_resources(run: RunRecord) -> list[BedrockResource]:
    """The customization jobs and custom models of the training stages and the provisional deployments of the
    evaluations, in pipeline order (empty on the SageMaker road)."""
    if platform(run) != "bedrock":
        return []
    fates = {d.arn: d.outcome + (f": {d.detail}" if d.detail else "") for d in run.provisionalDeployments}
    found: list[BedrockResource] = []
    for key, record in _recorded(run).items():
        label = stage_title(key)
        for kind, arn in (
            ("customization job", record.jobArn),
            ("custom model", record.customModelArn),
            ("provisional deployment", record.deploymentArn),
        ):
            if arn:
                found.append(BedrockResource(label, kind, arn, fates.get(arn)))
    listed = {resource.arn for resource in found}
    for left in run.provisionalDeployments:
        if left.arn not in listed:  # reached by an evaluation that failed before its record named it
            found.append(BedrockResource(stage_title(left.stage), "provisional deployment", left.arn, fates[left.arn]))
    return found


def error(run: RunRecord) -> tuple[str | None, str | None]:
    """``(stage, cause)`` of a failed run."""
    if run.error is None:
        return None, None
    return run.error.stage or None, run.error.cause or run.error.error or None


def _recorded(run: RunRecord) -> dict[str, StageRecord]:
    return dict(run.stages.items()) if run.stages is not None else {}


def metrics_table(run: RunRecord) -> MetricsTable:
    """Baseline vs SFT vs RFT for every metric any evaluation reported.

    The pipeline's own table (``metrics.table``: ``baseline``/``sft``/``rft`` columns, where
    ``sft`` is the final evaluation when RFT did not run) wins; without it (a run that failed
    before "Collect metrics") the columns are read from the evaluation stages.
    """
    recorded = _recorded(run)
    if run.metrics is not None and any(run.metrics.column(key) for key, _, _ in _SERIES):
        collected = run.metrics
        # The SFT column is the final evaluation when the SFT checkpoint was the candidate.
        stage_of = {"sft": "finalEval"} if collected.candidate == "sft" else {}
        return _table(
            [
                (Series(key, label, stage_of.get(key, stage)), collected.column(key) or {})
                for key, label, stage in _SERIES
            ],
            recorded,
        )
    rft = recorded.get("rft")
    rft_ran = rft is not None and rft.status != "SKIPPED"
    # Without RFT the final evaluation measures the SFT model.
    columns = []
    for key, label, stage in _SERIES:
        record = recorded.get(stage)
        series = Series(key, label if key != "rft" or rft_ran else "Final", stage)
        columns.append((series, (record.metrics if record else None) or {}))
    return _table(columns, recorded)


def _table(columns: list[tuple[Series, dict[str, float]]], recorded: dict[str, StageRecord]) -> MetricsTable:
    series: list[Series] = []
    values: dict[str, dict[str, float | None]] = {}
    stats: dict[str, dict[str, MetricStats]] = {}
    for column, metrics in columns:
        finite = {name: value for name, value in metrics.items() if math.isfinite(value)}
        if not finite:
            continue
        series.append(column)
        for name, value in finite.items():
            values.setdefault(name, {})[column.key] = value
        record = recorded.get(column.stage)
        measured = {name: s for name, s in ((record.metricStats if record else None) or {}).items() if name in finite}
        if measured:
            stats[column.key] = measured
    rows = [(name, {s.key: per_series.get(s.key) for s in series}) for name, per_series in values.items()]
    return MetricsTable(series=series, rows=rows, stats=stats)


def gate_metric(run: RunRecord) -> str | None:
    """The metric the gate judged (or would have judged)."""
    if run.gate is not None and run.gate.metric:
        return run.gate.metric
    return run.plan.gate.metric if run.plan is not None else None


def gate(run: RunRecord) -> tuple[bool | None, list[str]]:
    """``(passed, reasons)``; ``passed`` is ``None`` when the gate was not reached."""
    if run.gate is None:
        return None, []
    return run.gate.passed, list(run.gate.reasons)


def parse_time(value: str | None) -> datetime | None:
    """An ISO-8601 time (``Z`` allowed) as an aware UTC datetime."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_iso(epoch_ms: int | None) -> str | None:
    """An ISO-8601 UTC timestamp of epoch milliseconds (as Step Functions events carry them)."""
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def stage_views(run: RunRecord) -> list[StageView]:
    """Recorded stages in pipeline order."""
    recorded = _recorded(run)
    views = [
        StageView(
            key=key,
            label=stage_title(key),
            status=recorded[key].status,
            job_name=recorded[key].jobName,
            checkpoint=recorded[key].checkpoint,
            started=parse_time(recorded[key].startedAt),
            ended=parse_time(recorded[key].endedAt),
            cost=stage_cost(recorded[key]),
        )
        for key in STAGES
        if key in recorded
    ]
    # Then what Bedrock did with the candidate: the import (the adoption of a customization job's model) and the
    # deployment (created, adopted or moved to the model).
    adopted = run.model is not None and run.model.origin == "customization"
    for key, label, item, status in (
        (
            "import",
            "Bedrock model adopted" if adopted else "Bedrock import",
            run.model,
            run.model.status if run.model else "",
        ),
        ("deploy", "Bedrock deployment", run.deployment, run.deployment.status if run.deployment else ""),
    ):
        if item is not None:
            view = StageView(key, label, status, item.name, None, parse_time(item.startedAt), parse_time(item.endedAt))
            views.append(view)
    return views


def _unknown(attempts: int) -> str:
    return f"{attempts} attempt{'s' * (attempts != 1)} of unknown billable time counted as $0"


def stage_cost(record: StageRecord) -> str:
    """A job stage's actual GPU cost over all its attempts: ``$1.23``, with any attempts of unknown time."""
    if record.billableSeconds is None:
        return "-"
    usd = record.actualUsd
    shown = f"${usd:,.2f}" if usd is not None else f"unpriced {record.instanceType or 'instance type'}"
    return shown + (f" ({_unknown(record.unknownBillingAttempts)})" if record.unknownBillingAttempts else "")


def cost_summary(run: RunRecord) -> str | None:
    """The run's actual GPU cost (every attempt, failed ones included) beside preflight's expected and worst case;
    None when no job ran and preflight made no estimate."""
    records = [record for _, record in run.stages.items()] if run.stages is not None else []
    ran = [record for record in records if record.billableSeconds is not None]
    estimate = run.preflight.cost if run.preflight is not None else None
    if not ran and estimate is None:
        return None
    # On the Bedrock road no stage bills instance time (lambdas.pipeline.stages.job_record).
    bedrock = platform(run) == "bedrock"
    usd, instance_seconds, unknown = billing.run_actual(ran)
    if bedrock:
        # Bedrock bills customization per token trained and inference per token: no instance time to read.
        text = "actual not measured by the run (Bedrock bills per token; see the account's Bedrock billing)"
    elif ran:
        text = (
            f"actual ${usd:,.2f} ({instance_seconds / 3600:,.2f} instance-hours billed, failed attempts included"
            + (f"; {_unknown(unknown)}" if unknown else "")
            + ")"
        )
    else:
        text = "actual $0.00 (no training job ran)"
    if estimate is not None:
        expected = f"${estimate.expectedUsd:,.2f}" if estimate.expectedUsd is not None else "not estimated"
        text += f"; expected {expected}; worst case ${estimate.estimatedUsd:,.2f}"
    return f"{'Bedrock' if bedrock else 'GPU'} cost: {text}"


def run_window(run: RunRecord) -> tuple[datetime | None, datetime | None]:
    """When the run started and ended (run-level times, else the span of its stages)."""
    started = parse_time(run.startedAt)
    ended = parse_time(run.endedAt)
    views = stage_views(run)
    if started is None:
        starts = [v.started for v in views if v.started]
        started = min(starts) if starts else None
    if ended is None:
        ends = [v.ended for v in views if v.ended]
        ended = max(ends) if ends else None
    return started, ended


def resume_input(run: RunRecord) -> dict[str, Any] | None:
    """The run input that continues a run which did not succeed from its newest checkpoint (``resumeFrom``,
    :class:`lambdas.pipeline.schema.ResumeFrom`): the RFT checkpoint goes to the final evaluation, the SFT
    checkpoint to RFT (or to the final evaluation when the run had no RFT). None without a checkpoint."""
    if run.status in ("SUCCEEDED", "GATE_REJECTED", "REJECTED") or not isinstance(run.input, dict):
        return None
    if platform(run) == "bedrock":  # a customization job leaves a custom model, not a checkpoint to resume from
        return None
    recorded = _recorded(run)
    rft, sft = recorded.get("rft"), recorded.get("sft")
    planned_rft = run.plan.enabled.rft if run.plan is not None else rft is not None and rft.status != "SKIPPED"
    if rft is not None and rft.status == "SUCCEEDED" and rft.checkpoint:
        resume = {"stage": "finalEval", "checkpoint": rft.checkpoint}
    elif sft is not None and sft.status == "SUCCEEDED" and sft.checkpoint:
        resume = {"stage": "rft" if planned_rft else "finalEval", "checkpoint": sft.checkpoint}
    else:
        return None
    return {**run.input, "resumeFrom": {**resume, "run": run.runId}}


def model_arn(run: RunRecord) -> str | None:
    return run.model.arn if run.model is not None else None


def model_text(run: RunRecord) -> str | None:
    """The imported model as the notification and the report name it: its ARN, and whether the run deleted it
    (the gate rejected it or chose the other checkpoint, or the final evaluation failed)."""
    arn = model_arn(run)
    if arn is not None and run.model is not None and run.model.note:
        return f"{arn} ({run.model.note})"
    if arn is None or run.model is None or run.model.status != "Deleted":
        return arn
    when = f" at {run.model.deletedAt}" if run.model.deletedAt else ""
    return f"{arn} (deleted{when}: the run did not deploy it)"


def deployment_arn(run: RunRecord) -> str | None:
    return run.deployment.arn if run.deployment is not None else None


def region_of(run: RunRecord) -> str | None:
    """The run's region, else the region in any ARN the record holds (links need it)."""
    if run.region:
        return run.region
    for arn in (run.executionArn, model_arn(run), deployment_arn(run)):
        parts = (arn or "").split(":")
        if len(parts) > 4 and parts[3]:
            return parts[3]
    return None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def format_value(value: float | None) -> str:
    if value is None:
        return "-"
    if value == int(value) and abs(value) >= 1:
        return str(int(value))
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def format_time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


# Console links --------------------------------------------------------------


def _console(region: str, service: str, fragment: str) -> str:
    return f"https://{region}.console.aws.amazon.com/{service}/home?region={region}#{fragment}"


def execution_url(region: str, arn: str) -> str:
    return _console(region, "states", f"/v2/executions/details/{quote(arn, safe=':')}")


def training_job_url(region: str, job_name: str) -> str:
    return _console(region, "sagemaker", f"/jobs/{quote(job_name, safe='')}")


def bedrock_custom_models_url(region: str) -> str:
    return _console(region, "bedrock", "/custom-models")


@dataclass(frozen=True)
class Link:
    label: str
    url: str


def console_links(run: RunRecord) -> list[Link]:
    """Step Functions execution, every SageMaker job, and the Bedrock model/deployment."""
    region = region_of(run)
    if not region:
        return []
    links = []
    if run.executionArn:
        links.append(Link("Step Functions execution", execution_url(region, run.executionArn)))
    for view in stage_views(run) if platform(run) == "sagemaker" else []:
        if view.job_name and view.key in STAGES:  # SageMaker jobs; Bedrock's resources have their own link
            links.append(Link(f"{view.label} job {view.job_name}", training_job_url(region, view.job_name)))
    if model_arn(run) or deployment_arn(run) or bedrock_resources(run):
        links.append(Link("Bedrock custom models and deployments", bedrock_custom_models_url(region)))
    return links


def bedrock_failure_kind(stage: str | None) -> str | None:
    """``import`` or ``deployment`` when a run failed in a Bedrock stage, else ``None``."""
    normalized = "".join(ch for ch in (stage or "").lower() if ch.isalpha())
    if "deploy" in normalized:
        return "deployment"
    if "import" in normalized or "custommodel" in normalized:
        return "import"
    return None
