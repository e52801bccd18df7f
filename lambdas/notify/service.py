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

import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from lambdas.common import layout, run_lock
from lambdas.common.aws_errors import error_code, is_missing, is_precondition_failed
from lambdas.notify.events import ExecutionStatusChange, run_id_in
from lambdas.notify.message import ExecutionEnd, Notification, render_notification
from lambdas.pipeline import runview
from lambdas.pipeline.bedrock import clean_up_provisional, provisional_deployments, serving_deployment
from lambdas.pipeline.jobs import stop_previous_attempt, stop_previous_customization
from lambdas.pipeline.naming import STAGES, run_id_from_execution
from lambdas.pipeline.record import RenderReport, build_record, write_record
from lambdas.pipeline.schema import (
    ProvisionalDeployment,
    RunError,
    RunRecord,
    RunState,
    RunStatus,
    StageFailure,
    StageName,
    StageRecords,
)

_RUN_STATUS: dict[str, RunStatus] = {
    "SUCCEEDED": "SUCCEEDED",
    "FAILED": "FAILED",
    "TIMED_OUT": "FAILED",
    "ABORTED": "ABORTED",
}
_HISTORY_PAGE = 100
# How much of an execution's history the notifier reads for the run's trail (its hard limit is 25,000 events).
_HISTORY_EVENTS = 25_000
# Step Functions' resource of the customization task (arn:aws:states:::bedrock:createModelCustomizationJob.sync)
# in its TaskScheduled event, and the field of the state outputs that names a provisional deployment.
_CUSTOMIZATION_RESOURCE = "createModelCustomizationJob"
_NAMES_DEPLOYMENT = re.compile(r'"deploymentArn"\s*:\s*"')


@dataclass(frozen=True)
class NotifyConfig:
    pipeline: str
    artifacts_bucket: str
    topic_arn: str
    # The run lock's table (lambdas/common/run_lock.py): the lock of an ended execution is released here.
    lock_table: str | None = None


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
    lock_released: bool = False
    # Why the run record could not be read or written (the notification says it too), if it could not.
    record_problem: str | None = None
    # Training jobs of the run still running when it ended, which the notifier stopped.
    stopped_jobs: list[str] = field(default_factory=list)
    # The Bedrock road: customization jobs still in progress, which the notifier stopped; and what it did with the
    # provisional deployments of a run that had no record of its own (no "Record" state deleted them).
    stopped_customizations: list[str] = field(default_factory=list)
    provisional: list[ProvisionalDeployment] = field(default_factory=list)
    # Custom models of customization jobs that completed as the run ended, which no stage record names (kept).
    unrecorded_models: list[str] = field(default_factory=list)


@dataclass
class Trail:
    """What an execution's history says about a run that ended without its own record.

    ``state``: the run state the last state to end left (plan, stage records with checkpoints and metrics,
    the imported model, the deployment); ``training_jobs``: every training job the execution started;
    ``customization_jobs``: every Bedrock model customization job it scheduled (the Bedrock road);
    ``provisional``: ``(evaluation stage, deployment ARN)`` of every provisional deployment a state output names
    (stage records' ``deploymentArn``, an evaluation's progress ``job.evaluation.deploymentArn``).
    """

    last_state: str | None = None
    state: RunState | None = None
    training_jobs: list[str] = field(default_factory=list)
    customization_jobs: list[str] = field(default_factory=list)
    provisional: list[tuple[StageName, str]] = field(default_factory=list)


def notify_execution_end(
    event: ExecutionStatusChange,
    *,
    config: NotifyConfig,
    s3: Any,
    sns: Any,
    sfn: Any,
    render_report: RenderReport,
    dynamodb: Any = None,
    sagemaker: Any = None,
    bedrock: Any = None,
) -> NotifyResult:
    """Release the run lock, stop what an unfinished run left running, read or record the run, publish; a
    record that cannot be read or written is reported in the notification, never a reason not to publish it.

    A run without a record of its own (no "Record" state deleted its provisional deployments) has them deleted
    here, but the one it adopted as its serving deployment; its reconstructed record lists what became of each."""
    released = _release_lock(event, config, dynamodb)
    trail = execution_trail(sfn, event) if event.detail.status != "SUCCEEDED" else Trail(last_state=None)
    stopped = _stop_running(trail.training_jobs, sagemaker, stop_previous_attempt)
    stopped_customizations = _stop_running(trail.customization_jobs, bedrock, stop_previous_customization)
    run_id = resolve_run_id(event, sfn)
    recorded = False
    record_problem: str | None = None
    provisional: list[ProvisionalDeployment] = []
    try:
        run = _load_run(s3, config, run_id)
    except ValidationError as error:
        # A run.json this schema cannot read is kept as it is; the notification tells what Step Functions knows.
        run = reconstruct_run(event, run_id=run_id, pipeline=config.pipeline, trail=trail)
        problem = f"{layout.run_record_key(run_id)} is not a valid run record ({error.error_count()} problems)"
        failed_at = run.error.stage if run.error else "record"
        cause = f"{run.error.cause}; {problem}" if run.error else problem
        run = run.model_copy(update={"error": RunError(stage=failed_at, cause=cause)})
    except Exception as error:  # noqa: BLE001 - an unreadable bucket must not stop the notification
        run = reconstruct_run(event, run_id=run_id, pipeline=config.pipeline, trail=trail)
        record_problem = f"{layout.run_record_key(run_id)} could not be read ({_describe(error)})"
    else:
        if run is None:
            provisional = _clean_up_provisional(bedrock, trail)
            run = reconstruct_run(event, run_id=run_id, pipeline=config.pipeline, trail=trail, provisional=provisional)
            try:
                recorded = _record_if_absent(s3, config, run, render_report)
                if not recorded:
                    run = _load_run(s3, config, run_id) or run
            except Exception as error:  # noqa: BLE001 - an unwritable bucket must not stop the notification
                record_problem = f"{layout.run_record_key(run_id)} could not be written ({_describe(error)})"
    end = ExecutionEnd(
        status=event.detail.status,
        execution_arn=event.detail.execution_arn,
        pipeline=config.pipeline,
        error=event.detail.error,
        cause=event.detail.cause,
    )
    report_uri = layout.s3_uri(config.artifacts_bucket, layout.report_key(run_id))
    notification = render_notification(run, end, report_uri=report_uri)
    notes = [f"The run record is missing: {record_problem}."] if record_problem else []
    if stopped:
        notes.append(f"Training jobs still running when the run ended were stopped: {', '.join(stopped)}.")
    if stopped_customizations:
        notes.append(
            "Bedrock model customization jobs still in progress when the run ended were stopped: "
            f"{', '.join(stopped_customizations)}."
        )
    notes += _provisional_notes(provisional)
    unrecorded = _unrecorded_models(bedrock, trail.customization_jobs, run)  # no trail is read for a success
    if unrecorded:
        notes.append(
            "Bedrock customization jobs that completed as the run ended left custom models that no stage of its "
            f"record names (kept; delete one with `aws bedrock delete-custom-model --model-identifier <ARN>` if it "
            f"is not wanted): {', '.join(f'{job} -> {arn}' for job, arn in unrecorded)}."
        )
    if notes:
        notification = Notification(subject=notification.subject, body="\n\n".join([notification.body, *notes]))
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
        lock_released=released,
        record_problem=record_problem,
        stopped_jobs=stopped,
        stopped_customizations=stopped_customizations,
        provisional=provisional,
        unrecorded_models=[arn for _, arn in unrecorded],
    )


def _release_lock(event: ExecutionStatusChange, config: NotifyConfig, dynamodb: Any) -> bool:
    """Free the run lock if this (ended) execution holds it; a refused execution never does."""
    if config.lock_table is None or dynamodb is None:
        return False
    try:
        return run_lock.release(dynamodb, config.lock_table, config.pipeline, event.detail.execution_arn)
    except Exception:  # noqa: BLE001 - the trigger frees a lock whose execution has ended; notify regardless
        return False


def _describe(error: BaseException) -> str:
    code = error_code(error)
    return f"{code}: {error}" if code else f"{type(error).__name__}: {error}"


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


def reconstruct_run(
    event: ExecutionStatusChange,
    *,
    run_id: str,
    pipeline: str,
    trail: Trail | None = None,
    provisional: list[ProvisionalDeployment] | None = None,
) -> RunRecord:
    """A run record from the execution event and its history's trail (aborted, timed out, or failed before
    recording): the plan, the stages that ended with their checkpoints and metrics, and an imported model or a
    deployment in flight, as the last state that ended left them; ``provisional``: what became of the provisional
    deployments of the Bedrock road (``provisionalDeployments``)."""
    provisional = provisional or []
    trail = trail or Trail()
    last_state = trail.last_state
    detail = event.detail
    error = None
    refused = detail.status == "FAILED" and detail.error == run_lock.LOCK_HELD_ERROR
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
    status: RunStatus = "REFUSED" if refused else _RUN_STATUS[detail.status]
    if trail.state is not None:
        base = build_record(
            trail.state,
            status=status,
            ended_at=None,
            region=event.region,
            pipeline_name=pipeline,
            provisional=provisional,
        )
        return base.model_copy(
            update={
                "runId": run_id,
                "recordedBy": "notify",
                "executionStatus": detail.status,
                "executionArn": detail.execution_arn,
                "startedAt": runview.format_iso(detail.start_date),
                "endedAt": runview.format_iso(detail.stop_date),
                "error": error,
                "input": detail.parsed("input") or base.input,
            }
        )
    return RunRecord(
        runId=run_id,
        pipeline=pipeline,
        status=status,
        recordedBy="notify",
        executionStatus=detail.status,
        region=event.region,
        executionArn=detail.execution_arn,
        startedAt=runview.format_iso(detail.start_date),
        endedAt=runview.format_iso(detail.stop_date),
        error=error,
        input=detail.parsed("input"),
        provisionalDeployments=provisional,
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


def execution_trail(sfn: Any, event: ExecutionStatusChange) -> Trail:
    """The trail of an execution that ended without its own record, read from its history, newest first
    (best effort: a missing permission or throttling leaves what was read so far)."""
    trail = Trail()
    try:
        pages = sfn.get_paginator("get_execution_history").paginate(
            executionArn=event.detail.execution_arn,
            reverseOrder=True,
            PaginationConfig={"MaxItems": _HISTORY_EVENTS, "PageSize": 1000},
        )
        for page in pages:
            for item in page.get("events", []):
                _follow_trail(trail, item)
    except Exception:  # noqa: BLE001 - a missing permission or throttling must not stop the notification
        return trail
    return trail


def _follow_trail(trail: Trail, item: dict[str, Any]) -> None:
    entered = item.get("stateEnteredEventDetails")
    if trail.last_state is None and entered and entered.get("name"):
        trail.last_state = str(entered["name"])
    exited = item.get("stateExitedEventDetails")
    text = exited.get("output") if exited else None
    # After the run state is found, only an output that names a deployment is parsed (histories are long).
    if isinstance(text, str) and (trail.state is None or _NAMES_DEPLOYMENT.search(text)):
        output = _json_object(text)
        if output is not None and trail.state is None and isinstance(output.get("plan"), dict):
            with contextlib.suppress(ValidationError):
                trail.state = RunState.model_validate(output)
        for found in _provisional_in(output or {}):
            if found[1] not in {arn for _, arn in trail.provisional}:
                trail.provisional.append(found)
    scheduled = item.get("taskScheduledEventDetails") or {}
    kind, resource = scheduled.get("resourceType"), str(scheduled.get("resource"))
    if kind == "sagemaker":
        _add_job(trail.training_jobs, scheduled, "TrainingJobName")
    elif kind == "bedrock" and resource.startswith(_CUSTOMIZATION_RESOURCE):
        # The request in Step Functions' spelling: JobName (stepfunctions/pipeline.py, _bedrock_job).
        _add_job(trail.customization_jobs, scheduled, "JobName")


def _add_job(jobs: list[str], scheduled: dict[str, Any], field_name: str) -> None:
    name = (_json_object(scheduled.get("parameters")) or {}).get(field_name)
    if isinstance(name, str) and name not in jobs:
        jobs.append(name)


def _provisional_in(output: dict[str, Any]) -> list[tuple[StageName, str]]:
    """The provisional deployments a state output names: its stage records' and noted failures' (as "Record run"
    finds them), and the one an evaluation in progress created (``job.evaluation.deploymentArn``)."""
    found: list[tuple[StageName, str]] = []
    with contextlib.suppress(ValidationError):
        stages = StageRecords.model_validate(output["stages"]) if isinstance(output.get("stages"), dict) else None
        failure = output.get("stageFailure")
        found += provisional_deployments(stages, StageFailure.model_validate(failure) if failure else None)
    job = output.get("job")
    stage, progress = (job.get("stage"), job.get("evaluation")) if isinstance(job, dict) else (None, None)
    arn = progress.get("deploymentArn") if isinstance(progress, dict) else None
    if stage in STAGES and isinstance(arn, str) and arn:
        found.append((stage, arn))
    return found


def _json_object(text: object) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _stop_running(job_names: list[str], client: Any, stop: Callable[[Any, str], str | None]) -> list[str]:
    """Stop every listed job still in progress with ``stop`` (a training job with SageMaker's client, a
    customization job with Bedrock's); the names of those stopped (best effort)."""
    stopped = []
    for name in job_names if client is not None else []:
        try:
            if stop(client, name) == "InProgress":
                stopped.append(name)
        except Exception:  # noqa: BLE001 - one job that cannot be stopped must not stop the others or the notice
            continue
    return stopped


def _clean_up_provisional(bedrock: Any, trail: Trail) -> list[ProvisionalDeployment]:
    """Delete the provisional deployments of the trail but the serving one, as "Record run" would have."""
    if bedrock is None or not trail.provisional:
        return []
    serving = serving_deployment(trail.state.deployment if trail.state else None)
    return clean_up_provisional(bedrock=bedrock, found=trail.provisional, serving=serving)


def _unrecorded_models(bedrock: Any, job_names: list[str], run: RunRecord) -> list[tuple[str, str]]:
    """``(job, custom model ARN)`` of every customization job of the run that completed but whose model no stage
    record names: a job that finished in the moment the run stopped (best effort: a job that cannot be read is
    skipped)."""
    recorded = {record.customModelArn for _, record in run.stages.items()} if run.stages is not None else set()
    found: list[tuple[str, str]] = []
    for name in job_names if bedrock is not None else []:
        try:
            job = bedrock.get_model_customization_job(jobIdentifier=name)
        except Exception:  # noqa: BLE001 - one job that cannot be read must not stop the others or the notice
            continue
        arn = job.get("outputModelArn")
        if job.get("status") == "Completed" and isinstance(arn, str) and arn and arn not in recorded:
            found.append((name, arn))
    return found


def _provisional_notes(outcomes: list[ProvisionalDeployment]) -> list[str]:
    """What the notification says of the provisional deployments the notifier dealt with."""
    gone = [o.arn for o in outcomes if o.outcome in ("deleted", "already deleted")]
    left = [f"{o.arn} ({o.detail})" for o in outcomes if o.outcome == "not deleted"]
    notes = [f"Provisional Bedrock deployments the run left were deleted: {', '.join(gone)}."] if gone else []
    if left:
        notes.append(
            f"Provisional Bedrock deployments that could not be deleted: {'; '.join(left)}; "
            "`novactl cleanup` deletes them once the cause is fixed."
        )
    return notes
