"""Notify Lambda: a pipeline execution ended (EventBridge) -> one message on the SNS topic.

Also emits the run-level metrics the dashboard shows: stage durations (seconds,
dimension ``stage``), Bedrock import/deployment failures and gate rejections.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.common.metric_names import (
    BEDROCK_DEPLOYMENT_FAILURES,
    BEDROCK_IMPORT_FAILURES,
    GATE_REJECTIONS,
    RUNS_NOTIFIED,
    RUNS_RECORDED_BY_NOTIFIER,
    STAGE_DURATION,
)
from lambdas.notify.events import ExecutionStatusChange
from lambdas.notify.service import NotifyResult, notify_execution_end
from lambdas.notify.settings import settings
from lambdas.pipeline.report import render_report

logger = Logger()
metrics = Metrics()


@cache
def _client(service: str) -> Any:
    return boto3.client(service)


def _emit_metrics(result: NotifyResult) -> None:
    metrics.add_metric(name=RUNS_NOTIFIED, unit=MetricUnit.Count, value=1)
    for stage, seconds in result.stage_durations.items():
        with single_metric(
            name=STAGE_DURATION,
            unit=MetricUnit.Seconds,
            value=seconds,
            namespace=metrics.namespace,
            default_dimensions={**metrics.default_dimensions, "service": metrics.service or "notify"},
        ) as metric:
            metric.add_dimension(name="stage", value=stage)
    if result.bedrock_failure == "import":
        metrics.add_metric(name=BEDROCK_IMPORT_FAILURES, unit=MetricUnit.Count, value=1)
    if result.bedrock_failure == "deployment":
        metrics.add_metric(name=BEDROCK_DEPLOYMENT_FAILURES, unit=MetricUnit.Count, value=1)
    if result.gate_rejected:
        metrics.add_metric(name=GATE_REJECTIONS, unit=MetricUnit.Count, value=1)
    if result.recorded_by_notifier:
        metrics.add_metric(name=RUNS_RECORDED_BY_NOTIFIER, unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    change = ExecutionStatusChange.model_validate(event)
    result = notify_execution_end(
        change,
        config=settings().config,
        s3=_client("s3"),
        sns=_client("sns"),
        sfn=_client("stepfunctions"),
        render_report=render_report,
        dynamodb=_client("dynamodb"),
        sagemaker=_client("sagemaker"),
        bedrock=_client("bedrock"),
    )
    _emit_metrics(result)
    logger.info(
        "run notification published",
        extra={
            "run_id": result.run_id,
            "status": result.status,
            "subject": result.notification.subject,
            "lock_released": result.lock_released,
            "record_problem": result.record_problem,
            "stopped_jobs": result.stopped_jobs,
            "stopped_customizations": result.stopped_customizations,
            "provisional": [p.to_json() for p in result.provisional],
        },
    )
    return {"runId": result.run_id, "status": result.status, "subject": result.notification.subject}
