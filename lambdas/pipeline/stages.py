"""Stage records: what ``run.json`` keeps of each job stage (:class:`lambdas.pipeline.schema.StageRecord`).

``stages.<baselineEval|sft|sftEval|rft|finalEval>`` always has ``status`` (``PENDING``,
``SKIPPED``, ``SUCCEEDED``, ``FAILED``, ``NOT_COMPLETED``), and once a job ran:
``jobName``, ``jobArn``, ``attempts``, ``startedAt``, ``endedAt``, ``checkpoint``
(training), ``metrics`` and ``metricStats`` (evaluation), ``recipeUri``, ``outputUri``, ``modelLocation``
(what the job started from), the instance settings, the billable seconds and actual cost of all its attempts
(:mod:`lambdas.pipeline.billing`) and the errors of earlier attempts.
"""

from __future__ import annotations

from lambdas.pipeline import billing
from lambdas.pipeline.schema import (
    JobAttempt,
    JobRequest,
    MetricStats,
    StageError,
    StageRecord,
    StageRecords,
    StageStatus,
)


def job_record(
    job: JobAttempt,
    *,
    status: StageStatus,
    ended_at: str | None,
    checkpoint: str | None = None,
    metrics: dict[str, float] | None = None,
    metric_stats: dict[str, MetricStats] | None = None,
    error: StageError | None = None,
    job_arn: str | None = None,
    custom_model_arn: str | None = None,
    deployment_arn: str | None = None,
    output_uri: str | None = None,
) -> StageRecord:
    """The record of a stage whose job ran (or was attempted). A Bedrock job's ARN, output model, provisional
    deployment and output location are given; a SageMaker job's come from its request and result."""
    request = job.request if isinstance(job.request, JobRequest) else None
    # GPU billing is SageMaker's; a Bedrock customization job or evaluation is billed by tokens, not seconds
    bedrock = job.request is not None and request is None
    seconds, unknown = (None, 0) if bedrock else billing.totals(job)
    instance_type, count = (request.instanceType, request.instanceCount) if request else (None, None)
    return StageRecord(
        status=status,
        jobName=job.name,
        jobArn=job_arn or (job.result.arn if job.result else None),
        customModelArn=custom_model_arn,
        deploymentArn=deployment_arn,
        attempts=job.attempt,
        startedAt=job.startedAt,
        endedAt=ended_at,
        checkpoint=checkpoint,
        metrics=metrics,
        metricStats=metric_stats,
        recipeUri=request.recipeFile if request else None,
        outputUri=output_uri or (request.outputArchive if request else None),
        modelLocation=request.modelLocation if request else None,
        instanceType=instance_type,
        instanceCount=count,
        billableSeconds=seconds,
        unknownBillingAttempts=unknown,
        actualUsd=None if seconds is None else billing.usd(seconds, instance_type, count),
        earlierAttempts=list(job.errors),
        error=error,
    )


def complete_records(stages: StageRecords, *, unfinished: StageStatus) -> StageRecords:
    """Every stage as the run ended: ``PENDING`` stages become ``unfinished``."""
    return StageRecords.model_validate(
        {
            name: record.model_copy(update={"status": unfinished}) if record.status == "PENDING" else record
            for name, record in stages.items()
        }
    )
