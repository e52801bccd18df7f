"""The run record (``runs/<run-id>/run.json``), the report beside it, and the champion record.

The record is written on success, on a gate rejection and on failure alike::

    {"schemaVersion": 1, "runId", "pipeline", "region", "executionArn", "status", "startedAt", "endedAt",
     "error": {"stage", "error", "cause"} | null,
     "input", "plan", "datasets": {name: {"uri", "etag", "sizeBytes", "versionId"}},
     "grader": {"name", "version", "arn"} | null, "preflight",
     "stages": {"baselineEval"|"sft"|"sftEval"|"rft"|"finalEval": {"status", "jobName", "checkpoint",
                "metrics", "startedAt", "endedAt", ...}},
     "metrics": {"metric", "candidate", "table": {"baseline", "sft", "rft"}},
     "gate": {"passed", "reasons", "checks", "champion"} | null,
     "model": {"arn", "name", "checkpoint", "status"} | null,
     "deployment": {"arn", "name", "status"} | null,
     "report": "s3://.../report.html"}

``status`` is ``SUCCEEDED``, ``GATE_REJECTED`` or ``FAILED``. An evaluation beside training
(baseline, SFT) that fails does not fail the run: the state machine notes it in its stage
(``{"status": "FAILED", "failure": {"stage", "job"}, "endedAt"}``) and the record shows that
stage ``FAILED`` with its ``error`` (see :func:`settle_noted_failures`). After a deployment the
champion record ``champions/<pipeline>.json`` names the deployed model and its metrics;
the next run's gate compares against it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from lambdas.common import layout
from lambdas.pipeline import naming
from lambdas.pipeline.stages import complete_records, job_record, with_stage

MAX_CAUSE_CHARS = 30000
_STEP_LABELS = {
    "validateRun": "Validate run",
    "preflight": "Preflight checks",
    "trainAndBaseline": "Train and baseline",
    "evaluateSftAndTrainRft": "Evaluate SFT and train RFT",
    "finalEval": "Final evaluation",
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


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def readable_cause(cause: Any) -> str:
    """The human part of a Step Functions error cause (Lambda errors carry JSON)."""
    parsed = _json(cause)
    if isinstance(parsed, dict):
        if "errorMessage" in parsed:
            return str(parsed["errorMessage"])
        if parsed.get("FailureReason"):
            return str(parsed["FailureReason"])
        if "TrainingJobStatus" in parsed:
            return f"the job ended {parsed['TrainingJobStatus']}"
    return "" if cause is None else str(cause)


def _job_failure_cause(stage: str, job: Mapping[str, Any]) -> str:
    label = naming.stage_title(stage)
    last = job.get("lastError") or {}
    reason = readable_cause(last.get("Cause")) or str(last.get("Error") or "unknown error")
    attempts = int(job.get("attempt") or 0)
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    parsed = _json(last.get("Cause"))
    if isinstance(parsed, dict) and "errorType" in parsed:
        return f"{label} stage failed ({parsed['errorType']}){tries}: {reason}"
    if job.get("name"):
        return f"{label} job {job['name']} failed{tries}: {reason}"
    return f"{label} stage failed: {reason}"


def failed_job_record(stage: str, job: Mapping[str, Any], ended_at: str | None) -> dict[str, Any]:
    """The ``FAILED`` record of a job stage, with the error and readable cause of its last attempt."""
    last = job.get("lastError") or {}
    return job_record(
        job,
        status="FAILED",
        ended_at=ended_at,
        error={"error": last.get("Error"), "cause": readable_cause(last.get("Cause"))[:2000]},
    )


def noted_failure_text(stage: str, record: Mapping[str, Any]) -> str | None:
    """What went wrong in a stage the state machine noted as failed (None when it did not fail)."""
    if not isinstance(record, Mapping) or record.get("status") != "FAILED":
        return None
    failure = record.get("failure")
    if isinstance(failure, Mapping):
        return _job_failure_cause(stage, failure.get("job") or {})
    error = record.get("error") if isinstance(record.get("error"), Mapping) else {}
    return str(error.get("cause") or error.get("error") or "failed")


def settle_noted_failures(stages: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Stages with every noted failure (``{"status": "FAILED", "failure": {"stage", "job"}, "endedAt"}``)
    turned into a complete ``FAILED`` job record with its ``error``."""
    if not isinstance(stages, Mapping):
        return stages
    settled = dict(stages)
    for name, record in stages.items():
        if (
            name in naming.STAGES
            and isinstance(record, Mapping)
            and record.get("status") == "FAILED"
            and isinstance(record.get("failure"), Mapping)
        ):
            settled[name] = failed_job_record(name, record["failure"].get("job") or {}, record.get("endedAt"))
    return settled


def describe_failure(run: Mapping[str, Any], ended_at: str | None) -> tuple[dict[str, str], str | None, dict | None]:
    """``(error record, failed job stage or None, that stage's record)`` of a failed run state."""
    error = run.get("error") if isinstance(run.get("error"), dict) else {}
    failure = run.get("stageFailure") if isinstance(run.get("stageFailure"), dict) else None
    error_name = None
    if failure is None:
        parsed = _json(error.get("Cause"))
        if isinstance(parsed, dict) and parsed.get("stage") in naming.STAGES and isinstance(parsed.get("job"), dict):
            failure = parsed
            error_name = error.get("Error")
    if failure is not None and failure.get("stage") in naming.STAGES:
        stage = failure["stage"]
        job = failure.get("job") or {}
        cause = _job_failure_cause(stage, job)
        record = failed_job_record(stage, job, ended_at)
        name = error_name or _STAGE_ERRORS[stage]
        return {"stage": stage, "error": name, "cause": cause[:MAX_CAUSE_CHARS]}, stage, record

    stage = str(run.get("failedStage") or "unknown")
    name = str(error.get("Error") or "PipelineFailed")
    cause = readable_cause(error.get("Cause")) or name
    label = _STEP_LABELS.get(stage, stage)
    text = f"{label} failed: {cause}"
    if stage == "deploy" and isinstance(run.get("model"), dict) and run["model"].get("arn"):
        text += f" (the imported model {run['model']['arn']} is kept)"
    return {"stage": stage, "error": name, "cause": text[:MAX_CAUSE_CHARS]}, None, None


def _run_id(run: Mapping[str, Any]) -> str:
    plan = run.get("plan") if isinstance(run.get("plan"), dict) else {}
    if plan.get("runId"):
        return str(plan["runId"])
    execution = run.get("execution") if isinstance(run.get("execution"), dict) else {}
    return naming.run_id_from_execution(str(execution.get("name", "")))


def build_record(
    run: Mapping[str, Any],
    *,
    status: str,
    ended_at: str | None,
    region: str | None,
    pipeline_name: str,
    error: Mapping[str, Any] | None = None,
    stages: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run record of a run state (complete or partial)."""
    plan = run.get("plan") if isinstance(run.get("plan"), dict) else None
    execution = run.get("execution") if isinstance(run.get("execution"), dict) else {}
    gate = run.get("gate") if isinstance(run.get("gate"), dict) else None
    return {
        "schemaVersion": 1,
        "runId": _run_id(run),
        "pipeline": pipeline_name,
        "region": region,
        "executionArn": execution.get("id"),
        "status": status,
        "startedAt": execution.get("startTime"),
        "endedAt": ended_at,
        "error": dict(error) if error else None,
        "input": run.get("input"),
        "plan": plan,
        "datasets": (plan or {}).get("datasets"),
        "grader": (plan or {}).get("grader"),
        "preflight": run.get("preflight"),
        "stages": complete_records(
            settle_noted_failures(stages if stages is not None else run.get("stages")),
            unfinished="NOT_COMPLETED" if status == "FAILED" else "SKIPPED",
        ),
        "metrics": run.get("metrics"),
        "gate": {**gate, "metric": (plan or {}).get("gate", {}).get("metric")} if gate else None,
        "model": run.get("model"),
        "deployment": run.get("deployment"),
    }


def _put(s3: Any, bucket: str, key: str, body: str, content_type: str) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType=content_type)
    return f"s3://{bucket}/{key}"


def _write(
    record: dict[str, Any],
    *,
    s3: Any,
    bucket: str,
    render_report: Callable[[dict], str] | None,
    log: Callable[[str, Exception], None] | None,
) -> dict[str, str | None]:
    run_id = record["runId"]
    report_uri = None
    if render_report is not None:
        try:
            report_uri = _put(s3, bucket, layout.report_key(run_id), render_report(record), "text/html")
        except Exception as error:  # noqa: BLE001 - the run record matters more than its report
            if log:
                log("report not written", error)
    record["report"] = report_uri
    record_uri = _put(
        s3, bucket, layout.run_record_key(run_id), json.dumps(record, indent=2, default=str), "application/json"
    )
    return {"runRecord": record_uri, "report": report_uri}


def champion_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the next run's gate compares against: the deployed model and its metrics."""
    metrics = record.get("metrics") or {}
    table = metrics.get("table") or {}
    plan = record.get("plan") or {}
    return {
        "pipeline": record["pipeline"],
        "runId": record["runId"],
        "modelArn": (record.get("model") or {}).get("arn"),
        "modelName": (record.get("model") or {}).get("name"),
        "checkpoint": (record.get("model") or {}).get("checkpoint"),
        "deploymentArn": (record.get("deployment") or {}).get("arn"),
        "deploymentName": (record.get("deployment") or {}).get("name"),
        "metric": metrics.get("metric"),
        "metrics": table.get(metrics.get("candidate")) or {},
        "evalDatasetEtag": ((plan.get("datasets") or {}).get("eval") or {}).get("etag"),
        "deployedAt": record.get("endedAt"),
        "runRecord": f"s3://{plan.get('artifactsBucket')}/{layout.run_record_key(record['runId'])}",
    }


def record_run(
    run: Mapping[str, Any],
    *,
    s3: Any,
    bucket: str,
    ended_at: str | None,
    region: str | None,
    pipeline_name: str,
    render_report: Callable[[dict], str] | None = None,
    log: Callable[[str, Exception], None] | None = None,
) -> dict[str, Any]:
    """Record a run that reached its end: ``SUCCEEDED`` (deployed or not) or ``GATE_REJECTED``."""
    gate = run.get("gate") or {}
    status = "GATE_REJECTED" if gate.get("passed") is False else "SUCCEEDED"
    record = build_record(run, status=status, ended_at=ended_at, region=region, pipeline_name=pipeline_name)
    written = _write(record, s3=s3, bucket=bucket, render_report=render_report, log=log)
    deployment = record.get("deployment") or {}
    champion = None
    if status == "SUCCEEDED" and deployment.get("status") == "Active":
        champion = _put(
            s3,
            bucket,
            layout.champion_key(pipeline_name),
            json.dumps(champion_record(record), indent=2),
            "application/json",
        )
    return {"status": status, **written, "champion": champion}


def record_failed_run(
    run: Mapping[str, Any],
    *,
    s3: Any,
    bucket: str,
    ended_at: str | None,
    region: str | None,
    pipeline_name: str,
    render_report: Callable[[dict], str] | None = None,
    log: Callable[[str, Exception], None] | None = None,
) -> dict[str, Any]:
    """Record a failed run with the failed stage, its cause and every partial result."""
    error, stage, stage_record = describe_failure(run, ended_at)
    stages = run.get("stages")
    if stage is not None and stage_record is not None:
        stages = with_stage(stages or {}, stage, stage_record)
    record = build_record(
        run, status="FAILED", ended_at=ended_at, region=region, pipeline_name=pipeline_name, error=error, stages=stages
    )
    written = _write(record, s3=s3, bucket=bucket, render_report=render_report, log=log)
    return {"error": error["error"], "cause": error["cause"], **written}
