"""A read-only view of a run record (``runs/<run-id>/run.json``) for notifications and reports.

The notification (``message.py``) and the HTML report (``lambdas/pipeline/report.py``)
show the same facts: the metrics table (baseline vs SFT vs RFT), the gate
decision, stage timings and console links. Every accessor tolerates missing or
partial records (skipped stages, failed runs, records written by hand). Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from lambdas.pipeline.naming import STAGES, stage_title

# Which stage's metrics stand for which model in the comparison.
_SERIES = (("baseline", "Baseline", "baselineEval"), ("sft", "SFT", "sftEval"), ("rft", "RFT", "finalEval"))
_SKIPPED = {"SKIPPED", "NOT_RUN", "DISABLED"}


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    stage: str


@dataclass(frozen=True)
class MetricsTable:
    """Rows of ``metric -> value per series`` (``None`` where a series has no value)."""

    series: list[Series]
    rows: list[tuple[str, dict[str, float | None]]]

    def __bool__(self) -> bool:
        return bool(self.rows)


@dataclass(frozen=True)
class StageView:
    key: str
    label: str
    status: str
    job_name: str | None
    checkpoint: str | None
    started: datetime | None
    ended: datetime | None

    @property
    def duration_seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return max(0.0, (self.ended - self.started).total_seconds())


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def run_id(run: dict) -> str:
    return str(run.get("runId") or run.get("run_id") or "unknown-run")


def status(run: dict) -> str:
    return str(run.get("status") or "UNKNOWN").upper()


def error(run: dict) -> tuple[str | None, str | None]:
    """``(stage, cause)`` of a failed run."""
    err = run.get("error")
    if isinstance(err, dict):
        stage = err.get("stage")
        cause = err.get("cause") or err.get("error")
        return (str(stage) if stage else None, str(cause) if cause else None)
    if isinstance(err, str):
        return None, err
    return None, None


def stages(run: dict) -> dict[str, dict]:
    return {k: v for k, v in _dict(run.get("stages")).items() if isinstance(v, dict)}


def number(value: Any) -> float | None:
    """A finite metric value (``{"value": x}`` is accepted too), else ``None``."""
    if isinstance(value, dict):
        for key in ("value", "score", "mean"):
            if key in value:
                return number(value[key])
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def metrics_table(run: dict) -> MetricsTable:
    """Baseline vs SFT vs RFT for every numeric metric any evaluation reported.

    The pipeline's own table (``metrics.table``: ``baseline``/``sft``/``rft`` columns, where
    ``sft`` is the final evaluation when RFT did not run) wins; without it the columns are
    read from the evaluation stages.
    """
    collected = _dict(_dict(run.get("metrics")).get("table"))
    if any(_dict(collected.get(key)) for key, _, _ in _SERIES):
        return _table([(Series(key, label, stage), _dict(collected.get(key))) for key, label, stage in _SERIES])
    recorded = stages(run)
    rft = recorded.get("rft", {})
    rft_ran = bool(rft) and str(rft.get("status", "")).upper() not in _SKIPPED
    # Without RFT the final evaluation measures the SFT model.
    return _table(
        [
            (
                Series(key, label if key != "rft" or rft_ran else "Final", stage),
                _dict(recorded.get(stage, {}).get("metrics")),
            )
            for key, label, stage in _SERIES
        ]
    )


def _table(columns: list[tuple[Series, dict]]) -> MetricsTable:
    series: list[Series] = []
    values: dict[str, dict[str, float | None]] = {}
    for column, metrics in columns:
        numeric = {name: number(v) for name, v in metrics.items()}
        numeric = {name: v for name, v in numeric.items() if v is not None}
        if not numeric:
            continue
        series.append(column)
        for name, value in numeric.items():
            values.setdefault(name, {})[column.key] = value
    rows = [(name, {s.key: per_series.get(s.key) for s in series}) for name, per_series in values.items()]
    return MetricsTable(series=series, rows=rows)


def gate_metric(run: dict) -> str | None:
    plan, run_input = _dict(run.get("plan")), _dict(run.get("input"))
    for source in (_dict(run.get("gate")), _dict(plan.get("gate")), _dict(run_input.get("gate"))):
        if isinstance(source.get("metric"), str):
            return source["metric"]
    return None


def gate(run: dict) -> tuple[bool | None, list[str]]:
    """``(passed, reasons)``; ``passed`` is ``None`` when the gate was not reached."""
    decision = run.get("gate")
    if not isinstance(decision, dict):
        return None, []
    passed = decision.get("passed")
    reasons = decision.get("reasons") or []
    if isinstance(reasons, str):
        reasons = [reasons]
    return (bool(passed) if passed is not None else None), [str(r) for r in reasons]


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 strings (``Z`` allowed) or epoch seconds/milliseconds, as aware UTC datetimes."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def stage_views(run: dict) -> list[StageView]:
    """Recorded stages in pipeline order (unknown stage keys after the known ones)."""
    recorded = stages(run)
    order = [k for k in STAGES if k in recorded] + [k for k in recorded if k not in STAGES]
    views = []
    for key in order:
        stage = recorded[key]
        views.append(
            StageView(
                key=key,
                label=stage_title(key),
                status=str(stage.get("status") or "UNKNOWN").upper(),
                job_name=str(stage["jobName"]) if stage.get("jobName") else None,
                checkpoint=str(stage["checkpoint"]) if stage.get("checkpoint") else None,
                started=parse_time(stage.get("startedAt")),
                ended=parse_time(stage.get("endedAt")),
            )
        )
    return views


def run_window(run: dict) -> tuple[datetime | None, datetime | None]:
    """When the run started and ended (run-level timings, else the span of its stages)."""
    timings = _dict(run.get("timings"))
    started = parse_time(run.get("startedAt") or timings.get("startedAt"))
    ended = parse_time(run.get("endedAt") or timings.get("endedAt"))
    views = stage_views(run)
    if started is None:
        starts = [v.started for v in views if v.started]
        started = min(starts) if starts else None
    if ended is None:
        ends = [v.ended for v in views if v.ended]
        ended = max(ends) if ends else None
    return started, ended


def arn_of(run: dict, field: str) -> str | None:
    value = run.get(field)
    if isinstance(value, dict):
        value = value.get("arn")
    return str(value) if value else None


def execution_arn(run: dict) -> str | None:
    return arn_of(run, "executionArn") or arn_of(run, "execution")


def region_of(run: dict) -> str | None:
    """The region in any ARN the record holds (links are only drawn when it is known)."""
    if isinstance(run.get("region"), str):
        return run["region"]
    for arn in (execution_arn(run), arn_of(run, "model"), arn_of(run, "deployment")):
        parts = (arn or "").split(":")
        if len(parts) > 4 and parts[3]:
            return parts[3]
    return None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
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


def console_links(run: dict) -> list[Link]:
    """Step Functions execution, every SageMaker job, and the Bedrock model/deployment."""
    region = region_of(run)
    if not region:
        return []
    links = []
    if arn := execution_arn(run):
        links.append(Link("Step Functions execution", execution_url(region, arn)))
    for view in stage_views(run):
        if view.job_name:
            links.append(Link(f"{view.label} job {view.job_name}", training_job_url(region, view.job_name)))
    if arn_of(run, "model") or arn_of(run, "deployment"):
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


def format_iso(value: Any) -> str | None:
    """An ISO-8601 UTC timestamp for a parsable time (epoch ms from Step Functions events)."""
    parsed = parse_time(value)
    return parsed.isoformat().replace("+00:00", "Z") if parsed else None
