"""The notification text for the end of a run (pure: a :class:`RunRecord` in, subject and body out).

Plain text, readable in an email client and in a chat tool: outcome first, then
the metrics table, the gate decision, the deployment, stage timings and links.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from lambdas.pipeline import runview
from lambdas.pipeline.schema import RunRecord

# SNS: subjects are at most 100 printable ASCII characters without line breaks; messages < 256 KB.
MAX_SUBJECT = 100
MAX_BODY = 200_000
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]+")


@dataclass(frozen=True)
class ExecutionEnd:
    """What Step Functions reported about the execution that ended."""

    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    execution_arn: str
    pipeline: str
    error: str | None = None
    cause: str | None = None


@dataclass(frozen=True)
class Notification:
    subject: str
    body: str


def outcome(run: RunRecord, end: ExecutionEnd) -> str:
    """One phrase for the subject: deployed, gate rejected, failed at a stage, aborted, timed out."""
    status = run.status
    stage, _ = runview.error(run)
    if end.status == "ABORTED" or status == "ABORTED":
        return "ABORTED"
    if status == "REFUSED":
        return "REFUSED (another run is active; nothing was started)"
    if end.status == "TIMED_OUT":
        return "TIMED OUT" + (f" in {stage}" if stage else "")
    if status == "GATE_REJECTED":
        return "GATE REJECTED (not deployed)"
    if status == "DRY_RUN":
        return "DRY RUN passed validation and preflight (no training job started)"
    if status == "REJECTED":
        return "REJECTED at approval (not deployed)"
    if status == "APPROVAL_EXPIRED":
        return "APPROVAL EXPIRED (not deployed)"
    if end.status == "FAILED" or status == "FAILED":
        return "FAILED" + (f" at {stage}" if stage else "")
    if runview.deployment_arn(run):
        return "SUCCEEDED, deployed"
    return "SUCCEEDED"


def subject(run: RunRecord, end: ExecutionEnd) -> str:
    text = f"[{end.pipeline}] Nova run {run.runId}: {outcome(run, end)}"
    text = _NOT_PRINTABLE.sub(" ", text).strip()
    return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 3] + "..."


def metrics_lines(run: RunRecord) -> list[str]:
    table = runview.metrics_table(run)
    if not table:
        return ["No evaluation metrics were recorded."]
    gate_metric = runview.gate_metric(run)
    headers = ["metric"] + [s.label for s in table.series]
    rows = [
        [name + (" *" if name == gate_metric else "")] + [table.cell(name, s.key, values[s.key]) for s in table.series]
        for name, values in table.rows
    ]
    samples = table.samples()
    if samples:
        rows.append(["samples (n)"] + [str(samples.get(s.key, "-")) for s in table.series])
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]

    def line(cells: list[str]) -> str:
        first, *rest = cells
        return "  ".join([first.ljust(widths[0])] + [c.rjust(w) for c, w in zip(rest, widths[1:], strict=False)])

    lines = [line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]
    if gate_metric:
        lines.append(f"* gate metric ({gate_metric})")
    if samples:
        lines.append("± the standard error of a mean over the evaluation's samples")
    return lines


def dataset_warnings(run: RunRecord) -> list[str]:
    """What preflight noted about the datasets: evaluation prompts in the training data, repeated rows."""
    if run.preflight is None:
        return []
    leakage = run.preflight.leakage
    out = list(leakage.warnings) if leakage is not None else []
    return out + [f"{name}: {w}" for name, report in run.preflight.datasets.items() for w in report.warnings]


def body(run: RunRecord, end: ExecutionEnd, *, report_uri: str | None = None) -> str:
    lines = [f"Nova customization run {run.runId} (pipeline {end.pipeline}): {outcome(run, end)}"]
    lines += [f"Road: {runview.road_text(run)}", ""]

    stage, cause = runview.error(run)
    if end.status != "SUCCEEDED" or stage or cause:
        cause = cause or end.cause or end.error
        if stage or cause:
            lines += ["What went wrong", f"  stage: {stage or 'unknown'}", f"  cause: {cause or 'not recorded'}", ""]

    decided = run.approval.decision if run.approval else None
    if decided is not None:
        lines += ["Approval", f"  decision: {decided.decision}", f"  reason: {decided.reason or 'none given'}"]
        lines += [f"  file: {decided.file}"] if decided.file else []
        lines += [""]

    resume = runview.resume_input(run)
    if resume is not None:
        lines += [
            "Continue from what finished (start an execution with this input)",
            f"  {json.dumps(resume, separators=(',', ':'))}",
            "",
        ]

    lines += ["Metrics (baseline vs SFT vs RFT)"] + [f"  {line}" for line in metrics_lines(run)] + [""]

    passed, reasons = runview.gate(run)
    verdict = {True: "PASSED", False: "REJECTED", None: "not reached"}[passed]
    lines.append(f"Quality gate: {verdict}")
    lines += [f"  - {reason}" for reason in reasons]
    lines.append("")

    model, deployment = runview.model_text(run), runview.deployment_arn(run)
    lines.append(f"Deployment: {deployment or 'none'}")
    if model:
        lines.append(f"Custom model: {model}")
    if deployment:
        lines.append("  Call it with the Bedrock Converse API, modelId = the deployment ARN.")
    lines.append("")

    resources = runview.bedrock_resources(run)
    if resources:
        lines.append("Bedrock resources")
        lines += [f"  {r.text()}" for r in resources]
        lines.append("")

    views = runview.stage_views(run)
    if views:
        lines.append("Stages")
        width = max(len(v.label) for v in views)
        for view in views:
            job = f"  {view.job_name}" if view.job_name else ""
            duration = runview.format_duration(view.duration_seconds)
            lines.append(f"  {view.label.ljust(width)}  {view.status:<10} {duration:>12} {view.cost:>9}{job}")
        started, ended = runview.run_window(run)
        if started and ended:
            total = runview.format_duration((ended - started).total_seconds())
            lines.append(f"  total {total} ({runview.format_time(started)} -> {runview.format_time(ended)})")
        lines.append("")
    cost = runview.cost_summary(run)
    if cost:
        lines += [cost, ""]

    warnings = dataset_warnings(run)
    if warnings:
        lines += ["Dataset warnings"] + [f"  - {w}" for w in warnings] + [""]

    links = runview.console_links(
        run if run.executionArn else run.model_copy(update={"executionArn": end.execution_arn})
    )
    if links or report_uri:
        lines.append("Links")
        lines += [f"  {link.label}: {link.url}" for link in links]
        if report_uri:
            lines.append(f"  Run report: {report_uri}")
            lines.append(f"  Run record: {report_uri.rsplit('/', 1)[0]}/run.json")
    text = "\n".join(lines).rstrip() + "\n"
    return text if len(text) <= MAX_BODY else text[: MAX_BODY - 40] + "\n... (truncated, see the run report)\n"


def render_notification(run: RunRecord, end: ExecutionEnd, *, report_uri: str | None = None) -> Notification:
    return Notification(subject=subject(run, end), body=body(run, end, report_uri=report_uri))
