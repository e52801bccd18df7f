"""Grading a batch: request items in, one result per item out, never an exception.

:func:`compile_spec` validates a spec and returns a :class:`RewardFunction`, a
``grade_batch(items) -> results`` callable that also carries the grader's name,
spec and ``score_range`` (what the pre-flight check needs).

Guarantees of :meth:`RewardFunction.grade_batch`, whatever the items hold:

- exactly one result per item, in order, with the item's ``id`` echoed verbatim
  (``None`` when the item has no ``id`` or is not an object);
- ``aggregate_reward_score`` is a finite float inside ``score_range``;
- a malformed item (not an object, no messages, no assistant turn, content of the
  wrong type, missing or unusable reference) gets ``score_range[0]`` and a
  ``malformed:<reason>`` metric; a grader bug on one item (an exception, a NaN
  score) gets the same score and a ``grader_error:<ExceptionType>`` metric;
  neither affects other items. Scores outside the declared range are clamped;
- every ``metrics_list`` value is finite: a NaN or infinite metric value becomes 0.0
  and a ``nonfinite_metric`` metric counts the replaced values (the response stays valid JSON).
"""

from __future__ import annotations

import json
import math
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from lambdas.reward.graders import BuildContext
from lambdas.reward.graders.base import Grader, GraderError, MalformedItem, Metric, NonFiniteScore, Outcome
from lambdas.reward.graders.llm_judge import LlmJudgeGrader
from lambdas.reward.items import Sample, item_id, parse_item

# Envelope keys under which a batch may arrive when the event is an object rather than a bare list.
_BATCH_KEYS = ("items", "samples", "batch", "rollouts", "instances")


def coerce_event(event: Any, _depth: int = 0) -> list[Any] | None:
    """The list of request items in a Lambda event, or None when the event holds none.

    The contract is a bare JSON list. Tolerated as well, because a wrapper costs
    nothing to unwrap and a wrong guess is visible in the results: a JSON string
    of the batch; an object with the batch under ``body`` (API Gateway / function
    URL, possibly a JSON string) or one of ``items``, ``samples``, ``batch``,
    ``rollouts``, ``instances``; and a single item object, graded as a batch of one.
    Anything else (a number, garbage text, null) holds no items: the handler
    returns an empty list and logs an error.
    """
    if isinstance(event, list):
        return event
    if _depth > 2:
        return None
    if isinstance(event, (str, bytes, bytearray)):
        try:
            return coerce_event(json.loads(event), _depth + 1)
        except ValueError:
            return None
    if isinstance(event, dict):
        if "body" in event and "messages" not in event:
            return coerce_event(event["body"], _depth + 1)
        for key in _BATCH_KEYS:
            batch = event.get(key)
            if isinstance(batch, list):
                return batch
        return [event]
    return None


@dataclass
class BatchSummary:
    """What a batch looked like, for logs and metrics (no prompt or response text)."""

    count: int = 0
    graded: int = 0
    malformed: int = 0
    malformed_reasons: dict[str, int] = field(default_factory=dict)
    grader_errors: list[str] = field(default_factory=list)
    judge_failures: int = 0
    mean: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    p10: float | None = None
    p50: float | None = None
    p90: float | None = None
    at_minimum: int = 0
    at_maximum: int = 0
    duration_ms: float = 0.0

    def as_log(self) -> dict[str, Any]:
        data = {key: value for key, value in self.__dict__.items() if value not in (None, [], {})}
        data["grader_errors"] = self.grader_errors[:5]
        return data


NONFINITE_METRIC = "nonfinite_metric"

# One response item: {"id", "aggregate_reward_score", "metrics_list"}.
Result = dict[str, Any]


def finite_metrics(metrics: list[Metric]) -> list[Metric]:
    """``metrics`` with every NaN/infinite ``value`` replaced by 0.0 (JSON has no NaN or Infinity).

    ``metrics`` itself is returned when every value is finite. When any value was replaced, one
    ``nonfinite_metric`` metric says how many, so a grader bug stays visible in the trainer's metrics
    without breaking the response.
    """
    try:  # the usual case, all finite, without copying: x - x is 0 for a finite number, NaN otherwise
        for metric in metrics:
            value = metric["value"]
            if value - value:
                break
        else:
            return metrics
    except Exception:  # noqa: BLE001 - not a number or not a metric dict: the full check below
        pass
    replaced = 0
    cleaned: list[Metric] = []
    for metric in metrics:
        value = metric.get("value") if isinstance(metric, dict) else None
        if isinstance(value, float) and not math.isfinite(value):
            metric = {**metric, "value": 0.0}
            replaced += 1
        cleaned.append(metric)
    if replaced:
        cleaned.append({"name": NONFINITE_METRIC, "value": float(replaced), "type": "Metric"})
    return cleaned


class RewardFunction:
    """A compiled grader spec: call it with a batch of request items to get the result list."""

    def __init__(self, name: str, spec: dict[str, Any], grader: Grader) -> None:
        self.name = name
        self.spec = spec
        self.grader = grader
        low, high = grader.score_range
        self.score_range: tuple[float, float] = (float(low), float(high))
        self.kind = grader.kind
        self._has_judge = any(isinstance(node, LlmJudgeGrader) for node in grader.walk())

    def __repr__(self) -> str:
        return f"RewardFunction(name={self.name!r}, kind={self.kind!r}, score_range={self.score_range})"

    def __call__(self, items: list[Any]) -> list[Result]:
        return self.grade_batch(items)

    def grade_batch(self, items: list[Any], *, deadline: float | None = None) -> list[Result]:
        """One result dict per item (see the module docstring for the guarantees)."""
        return self.grade_batch_with_summary(items, deadline=deadline)[0]

    def grade_batch_with_summary(
        self, items: list[Any], *, deadline: float | None = None
    ) -> tuple[list[Result], BatchSummary]:
        started = time.perf_counter()
        low, high = self.score_range
        summary = BatchSummary(count=len(items))
        results: list[Any] = [None] * len(items)
        samples: list[Sample] = []
        needs_reference = self.grader.needs_reference
        for index, item in enumerate(items):
            parsed = parse_item(index, item, needs_reference)
            if type(parsed) is Sample:
                samples.append(parsed)
            else:
                # parse_item returns a Sample or the reason string (``type() is`` keeps the hot path cheap)
                results[index] = self._failed(item_id(item), MalformedItem(cast(str, parsed)), summary)
        if samples:
            for sample, outcome in zip(samples, self._grade(samples, deadline), strict=True):
                if type(outcome) is tuple:
                    score, metrics = outcome
                    if not low <= score <= high:
                        if not math.isfinite(score):
                            error = GraderError(NonFiniteScore(f"score {score!r}"))
                            results[sample.index] = self._failed(sample.id, error, summary)
                            continue
                        score = low if score < low else high
                    results[sample.index] = {
                        "id": sample.id,
                        "aggregate_reward_score": float(score),
                        "metrics_list": finite_metrics(metrics),
                    }
                else:
                    # An outcome is a (score, metrics) tuple or a MalformedItem.
                    results[sample.index] = self._failed(sample.id, cast(MalformedItem, outcome), summary)
        self._summarize(results, summary)
        summary.duration_ms = (time.perf_counter() - started) * 1000.0
        return results, summary

    def _grade(self, samples: list[Sample], deadline: float | None) -> list[Outcome]:
        try:
            outcomes = self.grader.grade_many(samples, deadline)
            if len(outcomes) == len(samples):
                return outcomes
        except Exception:  # noqa: BLE001 - fall back to one item at a time to isolate the culprit
            pass
        isolated: list[Outcome] = []
        for sample in samples:
            try:
                isolated.extend(
                    self.grader.grade_many([sample], deadline)[:1] or [GraderError(RuntimeError("no outcome"))]
                )
            except Exception as exc:  # noqa: BLE001
                isolated.append(GraderError(exc))
        return isolated

    def _failed(self, item_id: Any, failure: MalformedItem, summary: BatchSummary) -> Result:
        name = failure.metric_name
        if isinstance(failure, GraderError):
            summary.grader_errors.append(f"{failure.reason}: {failure.detail}")
        else:
            summary.malformed += 1
            summary.malformed_reasons[failure.reason] = summary.malformed_reasons.get(failure.reason, 0) + 1
        return {
            "id": item_id,
            "aggregate_reward_score": self.score_range[0],
            "metrics_list": [{"name": name, "value": 1.0, "type": "Metric"}],
        }

    def _summarize(self, results: list[Result], summary: BatchSummary) -> None:
        scores = sorted(result["aggregate_reward_score"] for result in results)
        summary.graded = len(scores) - summary.malformed - len(summary.grader_errors)
        if not scores:
            return
        count = len(scores)
        low, high = self.score_range
        summary.mean = sum(scores) / count
        summary.minimum = scores[0]
        summary.maximum = scores[-1]
        summary.p10 = scores[int(0.1 * (count - 1))]
        summary.p50 = scores[int(0.5 * (count - 1))]
        summary.p90 = scores[int(0.9 * (count - 1))]
        # Every score lies in [low, high]: those at the ends are counted in the sorted list.
        summary.at_minimum = bisect_right(scores, low)
        summary.at_maximum = count - bisect_left(scores, high)
        if self._has_judge:
            summary.judge_failures = sum(
                1
                for result in results
                if any(m["name"].endswith("judge_error") and m["value"] > 0 for m in result["metrics_list"])
            )


def compile_spec(
    spec: object,
    *,
    name: str | None = None,
    bedrock_client: Any = None,
    bedrock_client_factory: Callable[..., Any] | None = None,
) -> RewardFunction:
    """Validate ``spec`` and build its :class:`RewardFunction`; raises ``SpecError`` naming the bad field.

    ``bedrock_client`` / ``bedrock_client_factory`` are injected into LLM judges
    (tests pass a stubbed client); by default judges create their client on first use.
    """
    context = BuildContext(bedrock_client=bedrock_client, bedrock_client_factory=bedrock_client_factory)
    grader = context.build(spec)
    low, high = grader.score_range
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        from lambdas.reward.spec import SpecError

        raise SpecError("", f"the score range [{low}, {high}] is empty or not finite")
    assert isinstance(spec, dict)  # context.build checked it
    return RewardFunction(name or f"inline-{spec['type']}", spec, grader)
