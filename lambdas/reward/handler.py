"""Reward Lambda: scores a batch of RFT rollouts with the grader the environment selects.

Invoked synchronously by Nova RFT training and evaluation jobs and by Bedrock RFT
(docs/contracts/reward-lambda.md): the event is a bare JSON list of request items and the
return value is a bare JSON list of ``{"id", "aggregate_reward_score",
"metrics_list"}``, one per item, in order. Grading never raises for a bad item
(see :mod:`lambdas.reward.engine`); event shapes other than a list are handled by
:func:`lambdas.reward.engine.coerce_event`.

Configuration, validated at import (cold start) so a bad spec fails loudly:
``GRADER_SPEC`` (inline JSON spec) or ``GRADER_PRESET`` (a shipped preset name).

Items are parsed by :mod:`lambdas.reward.items` rather than a pydantic model: the
contract is loose (two places for the reference, two content shapes), a bad item
must become a scored result rather than a validation error, and the parse is on
the hot path of every rollout.
"""

from __future__ import annotations

import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.common import metric_names as names
from lambdas.reward.config import reward_function_from_env
from lambdas.reward.engine import BatchSummary, coerce_event

# Leave time to return results (and flush metrics) before the function's own timeout.
_DEADLINE_MARGIN_S = 2.0

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or names.NAMESPACE)
# No Powertools Tracer: it needs aws-xray-sdk, which would slow every cold start; the
# function's active X-Ray tracing (set by the stack) records each invocation.

reward = reward_function_from_env(os.environ)
logger.info(
    "reward function loaded",
    extra={"grader": reward.name, "kind": reward.kind, "score_range": list(reward.score_range)},
)


def _deadline(context: Any) -> float | None:
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining_ms):
        return None
    remaining_s = float(remaining_ms()) / 1000.0
    return time.monotonic() + max(0.0, remaining_s - _DEADLINE_MARGIN_S)


def _publish(summary: BatchSummary) -> None:
    metrics.add_dimension(name="grader", value=reward.name)
    metrics.add_metric(name=names.BATCH_SIZE, unit=MetricUnit.Count, value=summary.count)
    metrics.add_metric(name=names.MALFORMED_ITEMS, unit=MetricUnit.Count, value=summary.malformed)
    metrics.add_metric(name=names.GRADER_ERRORS, unit=MetricUnit.Count, value=len(summary.grader_errors))
    metrics.add_metric(name=names.JUDGE_FAILURES, unit=MetricUnit.Count, value=summary.judge_failures)
    metrics.add_metric(name=names.GRADING_DURATION, unit=MetricUnit.Milliseconds, value=summary.duration_ms)
    # Set together when the batch had any item, absent for an empty batch.
    rewards = (
        (names.REWARD_MEAN, summary.mean),
        (names.REWARD_MIN, summary.minimum),
        (names.REWARD_MAX, summary.maximum),
    )
    for name, value in rewards:
        if value is not None:
            metrics.add_metric(name=name, unit=MetricUnit.NoUnit, value=value)


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: Any, context: Any) -> list[dict[str, Any]]:
    items = coerce_event(event)
    if items is None:
        logger.error("event holds no batch of items; returning no results", extra={"event_type": type(event).__name__})
        metrics.add_metric(name=names.UNRECOGNIZED_EVENTS, unit=MetricUnit.Count, value=1)
        return []
    results, summary = reward.grade_batch_with_summary(items, deadline=_deadline(context))
    _publish(summary)
    if summary.grader_errors:
        logger.error("grader raised on some items", extra={"grader_errors": summary.grader_errors[:5]})
    logger.info("graded batch", extra=summary.as_log())
    return results
