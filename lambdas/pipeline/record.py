"""The run record (``runs/<run-id>/run.json``), the report beside it, and the champion record.

The record is written on success, on a gate rejection and on failure alike::

    {"schemaVersion": 1, "runId", "pipeline", "status", "recordedBy", "executionStatus", "region",
     "executionArn", "startedAt", "endedAt",
     "error": {"stage", "error", "cause"} | null,
     "input", "plan", "datasets": {name: {"uri", "etag", "sizeBytes", "versionId"}},
     "grader": {"name", "version", "arn"} | null, "preflight",
     "stages": {"baselineEval"|"sft"|"sftEval"|"rft"|"finalEval": {"status", "jobName", "checkpoint",
                "metrics", "startedAt", "endedAt", ...}},
     "metrics": {"metric", "candidate", "table": {"baseline", "sft", "rft"}},
     "gate": {"passed", "reasons", "checks", "champion"} | null,
     "model": {"arn", "name", "checkpoint", "status"} | null,
     "deployment": {"arn", "name", "status"} | null,
     "provisionalDeployments": [{"stage", "arn", "outcome", "detail"}],
     "report": "s3://.../report.html"}

On the Bedrock road (``plan.platform`` ``bedrock``) ``stages.<training stage>`` also names the customization job
(``jobArn``) and its custom model (``customModelArn``), ``stages.<evaluation>.deploymentArn`` the provisional
deployment the evaluation invoked, and ``provisionalDeployments`` what "Record run" did with each of them.

The shape is :class:`lambdas.pipeline.schema.RunRecord`, and :func:`write_record` is the one
writer of ``run.json`` and its report: the stage functions record every run that reaches
"Record run" or "Record failed run"; the notify function records, with the same function,
a run that ended before it could record itself (aborted, timed out).

``status`` is ``SUCCEEDED``, ``GATE_REJECTED`` or ``FAILED`` (``ABORTED`` from the notify function).
An evaluation beside training (baseline, SFT) that fails does not fail the run: the state machine notes it in its stage
(``{"status": "FAILED", "failure": {"stage", "job"}, "endedAt"}``) and the record shows that
stage ``FAILED`` with its ``error`` (see :func:`settle_noted_failures`). After a deployment the
champion record ``champions/<pipeline>.json`` names the deployed model and its metrics;
the next run's gate compares against it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from lambdas.common import layout
from lambdas.common.aws_errors import is_missing, is_precondition_failed
from lambdas.pipeline import naming
from lambdas.pipeline.schema import (
    Champion,
    GateDecision,
    JobAttempt,
    ProvisionalDeployment,
    RunError,
    RunRecord,
    RunState,
    RunStatus,
    StageError,
    StageFailure,
    StageRecord,
    StageRecords,
)
from lambdas.pipeline.stages import complete_records, job_record

MAX_CAUSE_CHARS = 30000
# The states a run can fail in that are not job stages (job stages are labelled by naming.STAGE_LABELS).
_STEP_LABELS = {
    "validateRun": "Validate run",
    "preflight": "Preflight checks",
    "trainAndBaseline": "Train and baseline",
    "evaluateSftAndTrainRft": "Evaluate SFT and train RFT",
    "collectMetrics": "Collect metrics",
    "qualityGate": "Apply quality gate",
    "import": "Import model into Bedrock",
    "deploy": "Deploy model on demand",
    "recordRun": "Record run",
}
_STAGE_ERRORS = {
    "baselineEval": "BaselineEvaluationFailed",
    "sft": "SftFailed",
    "sftEval": "SftEvaluationFailed",
    "rft": "RftFailed",
    "finalEval": "FinalEvaluationFailed",
}

RenderReport = Callable[[RunRecord], str]
Log = Callable[[str, Exception], None]


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def readable_cause(cause: str | None) -> str:
    """The human part of a Step Functions error cause (Lambda errors carry JSON)."""
    parsed = _json(cause)
    if isinstance(parsed, dict):
        if "errorMessage" in parsed:
            return str(parsed["errorMessage"])
        # A failed job's description: SageMaker's FailureReason, Bedrock's failureMessage (or capitalized)
        for field in ("FailureReason", "failureMessage", "FailureMessage"):
            if parsed.get(field):
                return str(parsed[field])
        if "TrainingJobStatus" in parsed:
            return f"the job ended {parsed['TrainingJobStatus']}"
    return "" if cause is None else str(cause)


def _job_failure_cause(stage: str, job: JobAttempt) -> str:
    label = naming.stage_title(stage)
    last = job.lastError
    cause = last.Cause if last else None
    reason = readable_cause(cause) or str((last.Error if last else None) or "unknown error")
    tries = f" after {job.attempt} attempts" if job.attempt > 1 else ""
    parsed = _json(cause)
    finished = job.result is not None and job.result.status == "Completed"
    if finished:
        # The job itself succeeded: what failed is reading its output (the function, or Lambda throttling it).
        kind = f" ({parsed['errorType']})" if isinstance(parsed, dict) and "errorType" in parsed else ""
        error_name = last.Error if last and last.Error else "unknown error"
        return f"{label} job {job.name} completed, but reading its output failed{kind}: {error_name}: {reason}"
    if isinstance(parsed, dict) and "errorType" in parsed:
        return f"{label} stage failed ({parsed['errorType']}){tries}: {reason}"
    if job.name:
        return f"{label} job {job.name} failed{tries}: {reason}"
    return f"{label} stage failed: {reason}"


def failed_job_record(job: JobAttempt, ended_at: str | None) -> StageRecord:
    """The ``FAILED`` record of a job stage, with the error and readable cause of its last attempt."""
    last = job.lastError
    return job_record(
        job,
        status="FAILED",
        ended_at=ended_at,
        error=StageError(error=last.Error if last else None, cause=readable_cause(last.Cause if last else None)[:2000]),
    )


def noted_failure_text(stage: str, record: StageRecord) -> str | None:
    """What went wrong in a stage the state machine noted as failed (None when it did not fail)."""
    if record.status != "FAILED":
        return None
    if record.failure is not None:
        return _job_failure_cause(stage, record.failure.job)
    if record.error is not None:
        return record.error.cause or record.error.error or "failed"
    return "failed"


def settle_noted_failures(stages: StageRecords) -> StageRecords:
    """Stages with every noted failure (``{"status": "FAILED", "failure": {"stage", "job"}, "endedAt"}``)
    turned into a complete ``FAILED`` job record with its ``error``."""
    settled = stages
    for name, record in stages.items():
        if record.status == "FAILED" and record.failure is not None:
            settled = settled.replace(name, failed_job_record(record.failure.job, record.endedAt))
    return settled


def describe_failure(state: RunState, ended_at: str | None) -> tuple[RunError, str | None, StageRecord | None]:
    """``(error, failed job stage or None, that stage's record)`` of a failed run state."""
    error = state.error
    failure = state.stageFailure
    error_name = None
    if failure is None and error is not None:
        parsed = _json(error.Cause)
        if isinstance(parsed, dict) and parsed.get("stage") in naming.STAGES and isinstance(parsed.get("job"), dict):
            failure = StageFailure.model_validate(parsed)
            error_name = error.Error
    if failure is not None:
        stage = failure.stage
        cause = _job_failure_cause(stage, failure.job)
        record = failed_job_record(failure.job, ended_at)
        name = error_name or _STAGE_ERRORS[stage]
        return RunError(stage=stage, error=name, cause=cause[:MAX_CAUSE_CHARS]), stage, record

    stage_name = state.failedStage or "unknown"
    name = (error.Error if error else None) or "PipelineFailed"
    cause = readable_cause(error.Cause if error else None) or name
    text = f"{_STEP_LABELS.get(stage_name) or naming.stage_title(stage_name)} failed: {cause}"
    if stage_name == "deploy" and state.model is not None and state.model.arn:
        text += f" (the imported model {state.model.arn} is kept)"
    return RunError(stage=stage_name, error=name, cause=text[:MAX_CAUSE_CHARS]), None, None


def _run_id(state: RunState) -> str:
    if state.plan is not None:
        return state.plan.runId
    return naming.run_id_from_execution(state.execution.name, state.execution.id)


def _all_skipped() -> StageRecords:
    return StageRecords.model_validate({name: {"status": "SKIPPED"} for name in naming.STAGES})


def build_record(
    state: RunState,
    *,
    status: RunStatus,
    ended_at: str | None,
    region: str | None,
    pipeline_name: str,
    error: RunError | None = None,
    stages: StageRecords | None = None,
    provisional: Sequence[ProvisionalDeployment] = (),
) -> RunRecord:
    """The run record of a run state (complete or partial); ``provisional``: what was done with the provisional
    deployments of the Bedrock road (:func:`lambdas.pipeline.bedrock.clean_up_provisional`)."""
    plan = state.plan
    recorded = stages if stages is not None else state.stages
    gate = state.gate
    return RunRecord(
        runId=_run_id(state),
        pipeline=pipeline_name,
        region=region,
        executionArn=state.execution.id,
        status=status,
        startedAt=state.execution.startTime,
        endedAt=ended_at,
        error=error,
        input=state.input,
        plan=plan,
        datasets=plan.datasets if plan else None,
        grader=plan.grader if plan else None,
        preflight=state.preflight,
        stages=complete_records(
            settle_noted_failures(recorded if recorded is not None else _all_skipped()),
            unfinished="NOT_COMPLETED" if status == "FAILED" else "SKIPPED",
        ),
        metrics=state.metrics,
        gate=gate.model_copy(update={"metric": plan.gate.metric if plan else None}) if gate else None,
        model=state.model,
        deployment=state.deployment,
        approval=state.approval,
        provisionalDeployments=list(provisional),
    )


def _put(s3: Any, bucket: str, key: str, body: str, content_type: str, **extra: Any) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType=content_type, **extra)
    return layout.s3_uri(bucket, key)


def record_body(record: RunRecord) -> str:
    """``run.json`` as written (indented JSON of the record)."""
    return json.dumps(record.to_json(), indent=2)


def write_record(
    record: RunRecord,
    *,
    s3: Any,
    bucket: str,
    render_report: RenderReport | None,
    log: Log | None = None,
    only_if_absent: bool = False,
) -> RunRecord:
    """Write the report and ``run.json`` (the record names its report); the record as written.

    ``only_if_absent``: write ``run.json`` only if there is none yet (``If-None-Match``); the caller
    handles the precondition error, and the report then follows the record.
    """
    run_id = record.runId
    report_uri = layout.s3_uri(bucket, layout.report_key(run_id)) if render_report is not None else None
    record = record.model_copy(update={"report": report_uri})
    if only_if_absent:
        _put(s3, bucket, layout.run_record_key(run_id), record_body(record), "application/json", IfNoneMatch="*")
    if render_report is not None:
        try:
            _put(s3, bucket, layout.report_key(run_id), render_report(record), "text/html; charset=utf-8")
        except Exception as error:  # noqa: BLE001 - the run record matters more than its report
            if log:
                log("report not written", error)
            record = record.model_copy(update={"report": None})
    if not only_if_absent:
        _put(s3, bucket, layout.run_record_key(run_id), record_body(record), "application/json")
    return record


def champion_record(record: RunRecord, artifacts_bucket: str) -> Champion:
    """What the next run's gate compares against: the deployed model and its metrics."""
    metrics = record.metrics
    plan = record.plan
    return Champion(
        pipeline=record.pipeline,
        runId=record.runId,
        modelArn=record.model.arn if record.model else None,
        modelName=record.model.name if record.model else None,
        checkpoint=record.model.checkpoint if record.model else None,
        deploymentArn=record.deployment.arn if record.deployment else None,
        deploymentName=record.deployment.name if record.deployment else None,
        metric=metrics.metric if metrics else None,
        metrics=(
            metrics.column((record.gate.candidate if record.gate else None) or metrics.candidate) if metrics else None
        )
        or {},
        evalDatasetEtag=plan.datasets.eval.etag if plan else None,
        deployedAt=record.endedAt,
        runRecord=layout.s3_uri(artifacts_bucket, layout.run_record_key(record.runId)),
    )


def read_champion(s3: Any, bucket: str, pipeline_name: str) -> tuple[Champion | None, str | None]:
    """The champion record ``champions/<pipeline>.json`` and its ETag (the version a writer may replace);
    ``(None, None)`` when there is none."""
    try:
        response = s3.get_object(Bucket=bucket, Key=layout.champion_key(pipeline_name))
    except Exception as error:  # botocore's ClientError, without importing botocore here
        if is_missing(error):
            return None, None
        raise
    return Champion.model_validate_json(response["Body"].read()), str(response["ETag"])


def write_champion(champion: Champion, *, s3: Any, bucket: str, etag: str | None) -> str:
    """Write the champion record only over the version read (``If-Match: etag``), or only if there is none
    (``If-None-Match: *`` when ``etag`` is None); its URI. A record replaced since it was read raises S3's
    precondition error (:func:`lambdas.common.aws_errors.is_precondition_failed`)."""
    condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
    body = json.dumps(champion.to_json(), indent=2)
    return _put(s3, bucket, layout.champion_key(champion.pipeline), body, "application/json", **condition)


def record_run(
    state: RunState,
    *,
    s3: Any,
    bucket: str,
    ended_at: str | None,
    region: str | None,
    pipeline_name: str,
    render_report: RenderReport | None = None,
    log: Log | None = None,
    crown: Callable[[Champion], Champion] | None = None,
    provisional: Sequence[ProvisionalDeployment] = (),
) -> dict[str, Any]:
    """Record a run that reached its end: ``SUCCEEDED`` (deployed or not), ``GATE_REJECTED``, ``DRY_RUN``
    (a dry run, which ends after preflight), ``REJECTED`` or ``APPROVAL_EXPIRED`` (approval required, not given).

    After a deployment, ``crown`` turns the new champion record into the one written (the history of
    served models and what was retired, :mod:`lambdas.pipeline.serving`).
    """
    status: RunStatus = "GATE_REJECTED" if state.gate is not None and not state.gate.passed else "SUCCEEDED"
    if state.plan is not None and state.plan.dryRun:
        status = "DRY_RUN"
    decided = state.approval.decision if state.approval else None
    if decided is not None and decided.decision != "approve":
        status = "REJECTED" if decided.decision == "reject" else "APPROVAL_EXPIRED"
    record = build_record(
        state, status=status, ended_at=ended_at, region=region, pipeline_name=pipeline_name, provisional=provisional
    )
    record = write_record(record, s3=s3, bucket=bucket, render_report=render_report, log=log)
    champion = None
    if status == "SUCCEEDED" and record.deployment is not None and record.deployment.status == "Active":
        champion = _replace_champion(
            record, s3=s3, bucket=bucket, pipeline_name=pipeline_name, read=state.gate, log=log, crown=crown
        )
    return {
        "status": status,
        "runRecord": layout.s3_uri(bucket, layout.run_record_key(record.runId)),
        "report": record.report,
        "champion": champion,
    }


def _replace_champion(
    record: RunRecord,
    *,
    s3: Any,
    bucket: str,
    pipeline_name: str,
    read: GateDecision | None,
    log: Log | None,
    crown: Callable[[Champion], Champion] | None = None,
) -> str | None:
    """Write the champion record only over the version the gate read (``If-Match``), or only if there was none
    (``If-None-Match``); ``None`` when another run replaced it meanwhile (its champion stays)."""
    crowned = champion_record(record, bucket)
    if crown is not None:
        crowned = crown(crowned)
    try:
        return write_champion(crowned, s3=s3, bucket=bucket, etag=read.championEtag if read is not None else None)
    except Exception as error:  # botocore's ClientError, without importing botocore here
        if is_precondition_failed(error):
            if log is not None:
                log("champion not replaced: another run replaced it after this run's gate read it", error)
            return None
        raise


def record_failed_run(
    state: RunState,
    *,
    s3: Any,
    bucket: str,
    ended_at: str | None,
    region: str | None,
    pipeline_name: str,
    render_report: RenderReport | None = None,
    log: Log | None = None,
    provisional: Sequence[ProvisionalDeployment] = (),
) -> dict[str, Any]:
    """Record a failed run with the failed stage, its cause and every partial result."""
    error, stage, stage_record = describe_failure(state, ended_at)
    stages = state.stages
    if stage is not None and stage_record is not None:
        stages = (stages or _all_skipped()).replace(stage, stage_record)
    if state.metrics is None and state.plan is not None and stages is not None:
        from lambdas.pipeline.metrics import finished_metrics  # metrics reads this module's failure texts

        state = state.model_copy(update={"metrics": finished_metrics(state.plan, stages)})
    record = build_record(
        state,
        status="FAILED",
        ended_at=ended_at,
        region=region,
        pipeline_name=pipeline_name,
        error=error,
        stages=stages,
        provisional=provisional,
    )
    record = write_record(record, s3=s3, bucket=bucket, render_report=render_report, log=log)
    return {
        "error": error.error,
        "cause": error.cause,
        "runRecord": layout.s3_uri(bucket, layout.run_record_key(record.runId)),
        "report": record.report,
    }
