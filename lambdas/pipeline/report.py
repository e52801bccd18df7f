"""The run report (``runs/<run-id>/report.html``): one self-contained HTML page per run.

No external assets and no JavaScript: inline CSS and inline SVG only, so the
page opens from S3, an email attachment or a laptop. It shows the outcome, a
chart of baseline vs SFT vs RFT on every metric, the gate decision, a stage
timeline, what preflight found (cost estimate, GPU quotas, dataset notes and leakage), the lineage
(datasets, grader) and links to the jobs and the deployment. Every value from
the run record is escaped. Pure: a :class:`RunRecord` in, HTML out.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from lambdas.pipeline import runview
from lambdas.pipeline.schema import PreflightSummary, RunRecord

_COLORS = {"baseline": "#8c96a5", "sft": "#3b7dd8", "rft": "#e07b39", "final": "#e07b39"}
_STATUS_COLORS = {
    "SUCCEEDED": "#2e8540",
    "FAILED": "#c62828",
    "TIMED_OUT": "#c62828",
    "ABORTED": "#8d6e63",
    "REFUSED": "#8d6e63",
    "GATE_REJECTED": "#b26a00",
    "REJECTED": "#b26a00",
    "APPROVAL_EXPIRED": "#8d6e63",
    "DRY_RUN": "#3b7dd8",
    "RUNNING": "#3b7dd8",
    "SKIPPED": "#9e9e9e",
    "NOT_COMPLETED": "#8d6e63",
}
_CSS = """
body{font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1000px;
color:#1d232b;padding:0 1rem;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #dde2e8;
padding-bottom:.3rem}.badge{display:inline-block;padding:.15rem .6rem;border-radius:1rem;color:#fff;font-weight:600;
font-size:.85rem;vertical-align:middle}.muted{color:#5f6b7a}table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eef1f4}td.num,th.num{text-align:right;
font-variant-numeric:tabular-nums}.error{background:#fdecea;border-left:4px solid #c62828;padding:.6rem 1rem}
.gate-pass{border-left:4px solid #2e8540;padding:.4rem 1rem;background:#edf7ee}
.gate-fail{border-left:4px solid #b26a00;padding:.4rem 1rem;background:#fff4e5}
.gate-none{border-left:4px solid #9e9e9e;padding:.4rem 1rem;background:#f5f5f5}
code,pre{font-family:SFMono-Regular,Consolas,Menlo,monospace;font-size:.85rem}pre{background:#f6f8fa;padding:.8rem;
overflow-x:auto}svg text{font-family:inherit;font-size:12px;fill:#1d232b}svg .axis{stroke:#c4ccd6}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem;vertical-align:middle}
"""


def _e(value: Any) -> str:
    """Escape any value for text or a quoted attribute."""
    return escape("" if value is None else str(value), quote=True)


def _badge(status: str) -> str:
    color = _STATUS_COLORS.get(status, "#5f6b7a")
    return f'<span class="badge" style="background:{color}">{_e(status.replace("_", " "))}</span>'


def _link(label: str, url: str | None) -> str:
    if not url:
        return _e(label)
    return f'<a href="{_e(url)}" rel="noopener noreferrer">{_e(label)}</a>'


# Sections ---------------------------------------------------------------------


def _header(run: RunRecord) -> str:
    status = run.status
    started, ended = runview.run_window(run)
    total = runview.format_duration((ended - started).total_seconds()) if started and ended else "-"
    model = f"{run.plan.model.key} {run.plan.model.modelType}" if run.plan is not None else None
    facts = [
        ("Run", run.runId),
        ("Pipeline", run.pipeline),
        ("Base model", model),
        ("Road", runview.road_text(run)),
        ("Started", runview.format_time(started)),
        ("Ended", runview.format_time(ended)),
        ("Duration", total),
    ]
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts if v)
    parts = [
        f"<h1>Nova customization run <code>{_e(run.runId)}</code> {_badge(status)}</h1>",
        f'<table class="facts" id="facts">{rows}</table>',
    ]
    stage, cause = runview.error(run)
    if stage or cause or status in {"FAILED", "ABORTED", "TIMED_OUT"}:
        parts.append(
            '<div class="error" id="error"><strong>Failed at stage '
            f"<code>{_e(stage or 'unknown')}</code></strong><br>{_e(cause or 'no cause recorded')}</div>"
        )
    return "\n".join(parts)


def _gate_section(run: RunRecord) -> str:
    passed, reasons = runview.gate(run)
    css, verdict = {
        True: ("gate-pass", "PASSED"),
        False: ("gate-fail", "REJECTED"),
        None: ("gate-none", "not reached"),
    }[passed]
    metric = runview.gate_metric(run)
    items = "".join(f"<li>{_e(r)}</li>" for r in reasons)
    detail = f"<ul>{items}</ul>" if items else ""
    on = f" on <code>{_e(metric)}</code>" if metric else ""
    return (
        f'<h2>Quality gate</h2><div class="{css}" id="gate" data-passed="{_e(passed)}">'
        f"<strong>{verdict}</strong>{on}{detail}</div>"
    )


def _metrics_chart(table: runview.MetricsTable) -> str:
    """Horizontal grouped bars, one group per metric, each metric on its own scale (values labelled)."""
    bar_h, gap, group_gap, label_w, plot_w, value_w = 16, 3, 18, 200, 520, 70
    n = len(table.series)
    group_h = n * bar_h + (n - 1) * gap
    height = len(table.rows) * (group_h + group_gap) + group_gap
    width = label_w + plot_w + value_w
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="metrics-chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>Baseline vs SFT vs RFT per metric</title>'
    ]
    y = group_gap
    for name, values in table.rows:
        present = [abs(v) for v in values.values() if v is not None]
        # Scores in [0, 1] share the 0..1 scale; anything else is scaled to its largest value.
        scale = 1.0 if present and max(present) <= 1.0 else (max(present) if present and max(present) > 0 else 1.0)
        parts.append(f'<g class="metric" data-metric="{_e(name)}">')
        parts.append(
            f'<text x="{label_w - 8}" y="{y + group_h / 2 + 4:.1f}" text-anchor="end">{_e(_short(name, 28))}</text>'
        )
        parts.append(f'<line class="axis" x1="{label_w}" y1="{y - 4}" x2="{label_w}" y2="{y + group_h + 4}"/>')
        for i, series in enumerate(table.series):
            value = values.get(series.key)
            by = y + i * (bar_h + gap)
            if value is None:
                parts.append(
                    f'<text class="missing" x="{label_w + 6}" y="{by + bar_h - 4}" '
                    f'data-series="{_e(series.key)}">{_e(series.label)}: no value</text>'
                )
                continue
            w = max(1.0, plot_w * abs(value) / scale)
            color = _COLORS.get(series.key, "#607d8b")
            shown = runview.format_value(value)
            parts.append(
                f'<rect class="bar" data-series="{_e(series.key)}" data-value="{_e(value)}" x="{label_w}" y="{by}" '
                f'width="{w:.1f}" height="{bar_h}" fill="{color}"><title>{_e(name)} - {_e(series.label)}: '
                f"{_e(shown)}</title></rect>"
            )
            parts.append(f'<text x="{label_w + w + 6:.1f}" y="{by + bar_h - 4}">{_e(shown)}</text>')
        parts.append("</g>")
        y += group_h + group_gap
    parts.append("</svg>")
    return "".join(parts)


def _metrics_section(run: RunRecord) -> str:
    table = runview.metrics_table(run)
    if not table:
        return (
            '<h2>Metrics</h2><p class="muted" id="metrics-empty">No evaluation metrics were recorded for this run.</p>'
        )
    legend = "".join(
        f'<span style="background:{_COLORS.get(s.key, "#607d8b")}"></span>{_e(s.label)}' for s in table.series
    )
    gate_metric = runview.gate_metric(run)
    head = "".join(f'<th class="num">{_e(s.label)}</th>' for s in table.series)
    body = []
    for name, values in table.rows:
        marker = " <small>(gate)</small>" if name == gate_metric else ""
        cells = "".join(f'<td class="num">{_e(table.cell(name, s.key, values[s.key]))}</td>' for s in table.series)
        body.append(f'<tr data-metric="{_e(name)}"><td>{_e(name)}{marker}</td>{cells}</tr>')
    samples = table.samples()
    if samples:
        cells = "".join(f'<td class="num">{_e(samples.get(s.key, "-"))}</td>' for s in table.series)
        body.append(f'<tr data-metric="samples"><td>samples (n; ± is the standard error)</td>{cells}</tr>')
    return (
        f'<h2>Metrics: baseline vs SFT vs RFT</h2><p class="legend">{legend}</p>{_metrics_chart(table)}'
        f'<table id="metrics-table"><thead><tr><th>Metric</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def _timeline(views: list[runview.StageView]) -> str:
    timed = [v for v in views if v.started and v.ended]
    if not timed:
        return '<p class="muted" id="timeline-empty">No stage timings were recorded.</p>'
    start = min(v.started for v in timed if v.started)
    end = max(v.ended for v in timed if v.ended)
    span = max((end - start).total_seconds(), 1.0)
    row_h, label_w, plot_w, pad = 24, 170, 620, 30
    height = len(timed) * row_h + pad * 2
    width = label_w + plot_w + 130
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="timeline" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>Stage timeline</title>',
        f'<line class="axis" x1="{label_w}" y1="{pad - 6}" x2="{label_w + plot_w}" y2="{pad - 6}"/>',
        f'<text x="{label_w}" y="{pad - 12}">{_e(runview.format_time(start))}</text>',
        f'<text x="{label_w + plot_w}" y="{pad - 12}" text-anchor="end">{_e(runview.format_time(end))}</text>',
    ]
    for i, view in enumerate(timed):
        y = pad + i * row_h
        offset = (view.started - start).total_seconds() if view.started else 0.0
        x = label_w + plot_w * offset / span
        w = max(2.0, plot_w * (view.duration_seconds or 0) / span)
        color = _STATUS_COLORS.get(view.status, "#5f6b7a")
        duration = runview.format_duration(view.duration_seconds)
        parts.append(
            f'<g class="stage" data-stage="{_e(view.key)}"><text x="{label_w - 8}" y="{y + 15}" text-anchor="end">'
            f'{_e(view.label)}</text><rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
            f'fill="{color}"><title>{_e(view.label)}: {_e(view.status)}, {_e(duration)}</title></rect>'
            f'<text x="{x + w + 6:.1f}" y="{y + 15}">{_e(duration)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _stages_section(run: RunRecord) -> str:
    views = runview.stage_views(run)
    if not views:
        return '<h2>Stages</h2><p class="muted">No stage was recorded.</p>'
    region = runview.region_of(run) if runview.platform(run) == "sagemaker" else None  # links to SageMaker jobs
    rows = []
    for v in views:
        job = _link(v.job_name, runview.training_job_url(region, v.job_name) if region else None) if v.job_name else "-"
        rows.append(
            f'<tr data-stage="{_e(v.key)}"><td>{_e(v.label)}</td><td>{_badge(v.status)}</td><td>{job}</td>'
            f"<td><code>{_e(v.checkpoint or '-')}</code></td><td>{_e(runview.format_time(v.started))}</td>"
            f'<td class="num">{_e(runview.format_duration(v.duration_seconds))}</td>'
            f'<td class="num">{_e(v.cost)}</td></tr>'
        )
    summary = runview.cost_summary(run)
    cost = f'<p id="actual-cost">{_e(summary)}</p>' if summary else ""
    return (
        f'<h2>Stages</h2>{_timeline(views)}<table id="stages"><thead><tr><th>Stage</th><th>Status</th>'
        '<th>Job</th><th>Checkpoint</th><th>Started</th><th class="num">Duration</th>'
        '<th class="num">GPU cost (all attempts)</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{cost}"
    )


def _deployment_section(run: RunRecord) -> str:
    model, deployment = runview.model_text(run), runview.deployment_arn(run)
    region = runview.region_of(run)
    items = []
    if deployment:
        items.append(
            f'<li>Deployment: <code id="deployment-arn">{_e(deployment)}</code> '
            "(call it with the Bedrock Converse API, <code>modelId</code> = this ARN)</li>"
        )
    if model:
        items.append(f'<li>Custom model: <code id="model-arn">{_e(model)}</code></li>')
    if not items:
        items.append("<li>Not deployed.</li>")
    links = [_link(link.label, link.url) for link in runview.console_links(run)]
    link_list = "".join(f"<li>{link}</li>" for link in links)
    console = f'<h2>Console links</h2><ul id="links">{link_list}</ul>' if link_list else ""
    if not region and (model or deployment):
        console += '<p class="muted">Console links need the region: the record holds no ARN with one.</p>'
    return f'<h2>Model and deployment</h2><ul id="deployment">{"".join(items)}</ul>{console}'


def _bedrock_section(run: RunRecord) -> str:
    """The Bedrock road's customization jobs, custom models and provisional deployments, and what became of them."""
    resources = runview.bedrock_resources(run)
    if not resources:
        return ""
    rows = "".join(
        f"<tr><td>{_e(r.stage)}</td><td>{_e(r.kind)}</td><td><code>{_e(r.arn)}</code></td><td>{_e(r.fate or '-')}</td>"
        "</tr>"
        for r in resources
    )
    return (
        '<h2>Bedrock resources</h2><table id="bedrock-resources"><thead><tr><th>Stage</th><th>What</th><th>ARN</th>'
        f"<th>When the run was recorded</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _resume_section(run: RunRecord) -> str:
    resume = runview.resume_input(run)
    if resume is None:
        return ""
    return (
        "<h2>Continue from what finished</h2><p>Start an execution with this input: it goes on from "
        f"<code>{_e(resume['resumeFrom']['checkpoint'])}</code>.</p>"
        f'<pre id="resume-input">{_e(json.dumps(resume, indent=2))}</pre>'
    )


def _lineage_section(run: RunRecord) -> str:
    rows: list[tuple[str, str]] = []
    if run.grader is not None:
        rows.append(("Grader", f"{run.grader.name} (version {run.grader.version or '-'})"))
    if run.datasets is not None:
        for name in ("sft", "rft", "eval"):
            dataset = run.datasets.get(name)
            if dataset is not None:
                rows.append(
                    (f"Dataset {name}", f"{dataset.uri} (ETag {dataset.etag})" if dataset.etag else dataset.uri)
                )
    table = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in rows)
    shown = {"input": run.input, "plan": run.plan.to_json() if run.plan is not None else None}
    shown = {k: v for k, v in shown.items() if v is not None}
    record = json.dumps(shown, indent=2)
    details = f"<details><summary>Run input and plan</summary><pre>{_e(record)}</pre></details>" if shown else ""
    return f'<h2>Lineage</h2><table id="lineage">{table}</table>{details}'


def _preflight_section(run: RunRecord) -> str:
    """What preflight found before any GPU was paid for: the cost estimate and the GPU quotas."""
    if run.preflight is None:
        return ""
    cost, quotas = run.preflight.cost, run.preflight.quotas
    road = "Bedrock" if run.plan is not None and run.plan.platform == "bedrock" else "GPU"
    parts = [
        f'<p id="cost">Worst-case {road} cost: <strong>${cost.estimatedUsd:,.2f}</strong>'
        f"{_e(f' (budget ${cost.maxUsd:,.2f})')}, every job for its full maximum runtime"
        + (
            ""
            if cost.expectedUsd is None
            else f"; expected <strong>${cost.expectedUsd:,.2f}</strong> for the estimated durations"
        )
        + ".</p>"
    ]
    rows = []
    for entry in quotas.instanceTypes:
        shown = f"{entry.quota:g}" if entry.quota is not None else "-"
        rows.append(
            f'<tr><td><code>{_e(entry.instanceType)}</code></td><td class="num">{_e(shown)}</td>'
            f'<td class="num">{_e(entry.largestJob.instances)}</td><td class="num">{_e(entry.peak.instances)}</td>'
            f"<td>{_e(entry.quotaCode or '')}</td></tr>"
        )
    if rows:
        reason = f" ({quotas.reason})" if quotas.reason else ""
        parts.append(
            f'<p class="muted">GPU instance quotas: {_e(quotas.status)}{_e(reason)}</p><table id="quotas"><thead><tr>'
            '<th>Instance type</th><th class="num">Quota (instances)</th><th class="num">Largest job (instances)</th>'
            '<th class="num">Busiest phase (instances at once)</th><th>Quota code</th></tr></thead><tbody>'
            + "".join(rows)
            + "</tbody></table>"
        )
    bedrock_rows = [
        f"<tr><td>{_e(q.need)}</td><td>{_e(q.quotaName or 'not found')}</td>"
        f'<td class="num">{_e("-" if q.quota is None else f"{q.quota:g}")}</td>'
        f'<td class="num">{_e(f"{q.needed:g}")}</td>'
        f"<td>{_e(q.quotaCode or '')}</td></tr>"
        for q in quotas.bedrock
    ]
    if bedrock_rows:
        reason = f" ({quotas.reason})" if quotas.reason else ""
        parts.append(
            f'<p class="muted">Bedrock quotas: {_e(quotas.status)}{_e(reason)}</p><table id="bedrock-quotas"><thead>'
            '<tr><th>The run needs</th><th>Quota</th><th class="num">Value</th><th class="num">Needed</th>'
            "<th>Quota code</th></tr></thead><tbody>" + "".join(bedrock_rows) + "</tbody></table>"
        )
    warnings = cost.runtimeWarnings + cost.priceNotes + quotas.warnings
    if warnings:
        parts.append('<ul id="preflight-warnings">' + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>")
    parts.append(_datasets_part(run.preflight))
    return "<h2>Before any GPU</h2>" + "".join(parts)


def _datasets_part(preflight: PreflightSummary) -> str:
    """What preflight noted about the datasets: the leakage check, repeated rows, schemaVersion added."""
    notes = [f"{name}: {w}" for name, report in preflight.datasets.items() for w in report.warnings]
    notes += [
        f"{name}: {report.schemaVersionAdded} rows had no schemaVersion; the staged copy gives them "
        '"bedrock-conversation-2024"'
        for name, report in preflight.datasets.items()
        if report.schemaVersionAdded
    ]
    leakage = preflight.leakage
    if leakage is not None:
        counts = ", ".join(f"{split} {count}" for split, count in leakage.found.items())
        notes.insert(
            0,
            f"Evaluation prompts found verbatim in the training data: {counts} of {leakage.evalPrompts}"
            + (f" (e.g. {'; '.join(leakage.examples)})" if leakage.examples else ""),
        )
    if not notes:
        return ""
    return '<ul id="dataset-notes">' + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def render_report(run: RunRecord) -> str:
    """A self-contained HTML page for one run record."""
    title = f"Nova run {run.runId}: {run.status.replace('_', ' ')}"
    sections = [
        _header(run),
        _resume_section(run),
        _metrics_section(run),
        _gate_section(run),
        _stages_section(run),
        _preflight_section(run),
        _deployment_section(run),
        _bedrock_section(run),
        _lineage_section(run),
    ]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
