"""Notify the end of a run: read (or, when the run could not write it, record) the run, then publish.

Runs that were aborted or timed out never reach the pipeline's "Record run"
step, so their ``run.json`` does not exist: this module writes one (and its
report) from what Step Functions knows, through the pipeline's own writer
(:func:`lambdas.pipeline.record.write_record`, so the record has the one shape of
:class:`lambdas.pipeline.schema.RunRecord`), only if none exists yet (``If-None-Match``),
so nothing is lost and nothing the pipeline wrote is overwritten.

Clients are parameters; nothing here creates an AWS client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from lambdas.common import layout
from lambdas.common.aws_errors import is_missing, is_precondition_failed
from lambdas.notify.events import ExecutionStatusChange, run_id_in
from lambdas.notify.message import ExecutionEnd, Notification, render_notification
from lambdas.pipeline import runview
from lambdas.pipeline.naming import run_id_from_execution
from lambdas.pipeline.record import RenderReport, write_record
from lambdas.pipeline.schema import RunError, RunRecord, RunStatus

_RUN_STATUS: dict[str, RunStatus] = {
    "SUCCEEDED": "SUCCEEDED",
    "FAILED": "FAILED",
    "TIMED_OUT": "FAILED",
    "ABORTED": "ABORTED",
}
_HISTORY_PAGE = 100


@dataclass(frozen=True)
class NotifyConfig:
    pipeline: str
    artifacts_bucket: str
    topic_arn: str


@dataclass(frozen=True)
class NotifyResult:
    """What was published, and the facts the handler turns into metrics."""

    run_id: str
    status: str
    notification: Notification
    recorded_by_notifier: bool
    stage_durations: dict[str, float] = field(default_factory=dict)
    bedrock_failure: str | None = None
    gate_rejected: bool = False


def notify_execution_end(
    event: ExecutionStatusChange,
    *,
    config: NotifyConfig,
    s3: Any,
    sns: Any,
    sfn: Any,
    render_report: RenderReport,
) -> NotifyResult:
    run_id = resolve_run_id(event, sfn)
    recorded = False
    try:
        run = _load_run(s3, config, run_id)
    except ValidationError as error:
        # A run.json this schema cannot read is kept as it is; the notification tells what Step Functions knows.
        run = reconstruct_run(event, run_id=run_id, pipeline=config.pipeline, last_state=_last_state(sfn, event))
        problem = f"{layout.run_record_key(run_id)} is not a valid run record ({error.error_count()} problems)"
        failed_at = run.error.stage if run.error else "record"
        cause = f"{run.error.cause}; {problem}" if run.error else problem
        run = run.model_copy(update={"error": RunError(stage=failed_at, cause=cause)})
    else:
        if run is None:
            run = reconstruct_run(event, run_id=run_id, pipeline=config.pipeline, last_state=_last_state(sfn, event))
            recorded = _record_if_absent(s3, config, run, render_report)
            if not recorded:
                run = _load_run(s3, config, run_id) or run
    end = ExecutionEnd(
        status=event.detail.status,
        execution_arn=event.detail.execution_arn,
        pipeline=config.pipeline,
        error=event.detail.error,
        cause=event.detail.cause,
    )
    report_uri = layout.s3_uri(config.artifacts_bucket, layout.report_key(run_id))
    notification = render_notification(run, end, report_uri=report_uri)
    sns.publish(TopicArn=config.topic_arn, Subject=notification.subject, Message=notification.body)
    stage, _ = runview.error(run)
    return NotifyResult(
        run_id=run_id,
        status=run.status,
        notification=notification,
        recorded_by_notifier=recorded,
        stage_durations={v.key: v.duration_seconds for v in runview.stage_views(run) if v.duration_seconds is not None},
        bedrock_failure=runview.bedrock_failure_kind(stage) if event.detail.status != "SUCCEEDED" else None,
        gate_rejected=run.status == "GATE_REJECTED",
    )


def resolve_run_id(event: ExecutionStatusChange, sfn: Any) -> str:
    """The pipeline's run id: from the output, else from the first state output holding
    ``plan.runId`` (failed or stopped runs return no output), else derived from the execution
    name exactly as the pipeline derives it."""
    from_output = event.run_id_from_output
    if from_output:
        return from_output
    try:
        history = sfn.get_execution_history(
            executionArn=event.detail.execution_arn, reverseOrder=False, maxResults=_HISTORY_PAGE
        )
    except Exception:  # noqa: BLE001 - a missing permission or throttling must not stop the notification
        return run_id_from_execution(event.detail.name, event.detail.execution_arn)
    for item in history.get("events", []):
        exited = item.get("stateExitedEventDetails") or {}
        try:
            found = run_id_in(json.loads(exited.get("output") or "null"))
        except ValueError:
            found = None
        if found:
            return found
    return run_id_from_execution(event.detail.name, event.detail.execution_arn)


def reconstruct_run(event: ExecutionStatusChange, *, run_id: str, pipeline: str, last_state: str | None) -> RunRecord:
    """A run record from the execution event alone (aborted, timed out, or failed before recording)."""
    detail = event.detail
    error = None
    if detail.status != "SUCCEEDED":
        cause = {
            "ABORTED": "the execution was stopped (aborted) before it finished",
            "TIMED_OUT": "the execution exceeded the state machine's timeout",
        }.get(detail.status)
        details = ": ".join(p for p in (detail.error, detail.cause) if p)
        error = RunError(
            stage=last_state or "unknown",
            error=detail.error,
            cause="; ".join(p for p in (cause, details) if p) or "unknown",
        )
    return RunRecord(
        runId=run_id,
        pipeline=pipeline,
        status=_RUN_STATUS[detail.status],
        recordedBy="notify",
        executionStatus=detail.status,
        region=event.region,
        executionArn=detail.execution_arn,
        startedAt=runview.format_iso(detail.start_date),
        endedAt=runview.format_iso(detail.stop_date),
        error=error,
        input=detail.parsed("input"),
    )


def _load_run(s3: Any, config: NotifyConfig, run_id: str) -> RunRecord | None:
    """The run record, ``None`` when there is none; a record this schema cannot read raises ``ValidationError``."""
    try:
        raw = s3.get_object(Bucket=config.artifacts_bucket, Key=layout.run_record_key(run_id))["Body"].read()
    except Exception as error:  # botocore's ClientError, without importing botocore here
        if is_missing(error):
            return None
        raise
    return RunRecord.model_validate_json(raw)


def _record_if_absent(s3: Any, config: NotifyConfig, run: RunRecord, render_report: RenderReport) -> bool:
    """Write run.json and report.html unless the pipeline wrote them meanwhile; ``True`` if written."""
    try:
        write_record(run, s3=s3, bucket=config.artifacts_bucket, render_report=render_report, only_if_absent=True)
    except Exception as error:  # botocore's ClientError, without importing botocore here
        if is_precondition_failed(error):
            return False
        raise
    return True


def _last_state(sfn: Any, event: ExecutionStatusChange) -> str | None:
    """The last state the execution entered (where it failed, was aborted or timed out), best effort."""
    try:
        history = sfn.get_execution_history(
            executionArn=event.detail.execution_arn, reverseOrder=True, maxResults=_HISTORY_PAGE
        )
    except Exception:  # noqa: BLE001 - a missing permission or throttling must not stop the notification
        return None
    for item in history.get("events", []):
        entered = item.get("stateEnteredEventDetails")
        if entered and entered.get("name"):
            return str(entered["name"])
    return None
