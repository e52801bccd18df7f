"""Trigger Lambda: SQS (FIFO, batch of one) -> at most one pipeline execution per message.

A message that must wait for the running execution is reported as a batch item
failure, so SQS redelivers it after the visibility timeout; everything else is
acknowledged once it started a run, was found to be a duplicate, was rejected
with a reason, or was parked in the dead-letter queue.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.common import metric_names as names
from lambdas.trigger.messages import UnrecognizedMessage, parse_message
from lambdas.trigger.service import RunInProgress, handle_message, park_unrecognized
from lambdas.trigger.settings import settings

logger = Logger()
metrics = Metrics()
processor = SqsFifoPartialProcessor()
# A waiting request is the normal case, not an error: report it as a batch item failure
# without failing the invocation (which would count as a Lambda error every retry).
processor.raise_on_entire_batch_failure = False


@cache
def _client(service: str) -> Any:
    return boto3.client(service)


def record_handler(record: SQSRecord) -> None:
    config = settings()
    try:
        message = parse_message(record.json_body)
    except (UnrecognizedMessage, ValueError) as error:
        logger.error("unrecognized trigger message parked in the dead-letter queue", extra={"reason": str(error)})
        park_unrecognized(
            record.body,
            str(error),
            sqs=_client("sqs"),
            dead_letter_queue_url=config.dead_letter_queue_url,
            group=config.pipeline_name,
        )
        metrics.add_metric(name=names.TRIGGER_UNRECOGNIZED, unit=MetricUnit.Count, value=1)
        return
    try:
        outcome = handle_message(
            message,
            config=config.config,
            s3=_client("s3"),
            sfn=_client("stepfunctions"),
            sns=_client("sns"),
            dynamodb=_client("dynamodb"),
            enqueued_at=_enqueued_at(record),
        )
    except RunInProgress as waiting:
        logger.info("request waits for the running execution", extra={"running": waiting.running})
        metrics.add_metric(name=names.TRIGGER_WAITING, unit=MetricUnit.Count, value=1)
        raise
    logger.info(
        "trigger message handled",
        extra={
            "action": outcome.action,
            "source": outcome.source,
            "execution_name": outcome.execution_name,
            "reasons": outcome.reasons,
        },
    )
    metrics.add_metric(name=names.TRIGGER_OUTCOMES[outcome.action], unit=MetricUnit.Count, value=1)


def _enqueued_at(record: SQSRecord) -> datetime | None:
    """When the message entered the queue (``SentTimestamp``, epoch milliseconds), if SQS said."""
    sent = record.attributes.sent_timestamp
    return datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
