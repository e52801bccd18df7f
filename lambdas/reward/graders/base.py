"""The grader interface shared by every grader type.

A grader turns a list of :class:`~lambdas.reward.items.Sample` into one outcome
per sample, in order: either a ``(score, metrics)`` tuple or a
:class:`MalformedItem` saying why the sample could not be graded. The metrics
list and its entries are made for that outcome alone (never kept or shared):
selections and guards append to the list, and a weighted composition renames
the entries in place with its part's prefix. Graders
declare their score range up front (``score_range``) so the engine can give
malformed items the minimum and the pre-flight check can normalise scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, Union

from lambdas.reward.items import Sample
from lambdas.reward.spec import Fields, SpecError

Metric = dict[str, Any]
Graded = tuple[float, list[Metric]]
Outcome = Union[Graded, "MalformedItem"]


class MalformedItem(Exception):
    """The item cannot be graded; reported as the ``metric_name`` metric with the minimum score."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def metric_name(self) -> str:
        return f"malformed:{self.reason}"


class GraderError(MalformedItem):
    """A grader raised unexpectedly on one item: a bug, reported without failing the batch."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(type(exc).__name__)
        self.detail = str(exc)[:200]

    @property
    def metric_name(self) -> str:
        return f"grader_error:{self.reason}"


class NonFiniteScore(ArithmeticError):
    """A grader produced NaN or infinity: reported as ``grader_error:NonFiniteScore``."""


def reward(name: str, value: float) -> Metric:
    return {"name": name, "value": float(value), "type": "Reward"}


def metric(name: str, value: float) -> Metric:
    return {"name": name, "value": float(value), "type": "Metric"}


class Grader:
    """Base class: subclasses set ``kind`` and ``score_range`` and implement :meth:`grade`."""

    kind = "grader"
    needs_reference = True
    reads_json = False  # grades the response's JSON: takes a ParsedSample's value as it is
    ideal: str | None = None  # how the right answer is written, ``{reference}`` marking the reference
    score_range: tuple[float, float] = (0.0, 1.0)

    def grade(self, sample: Sample) -> Graded:
        raise NotImplementedError

    def grade_many(self, samples: Sequence[Sample], deadline: float | None = None) -> list[Outcome]:
        """One outcome per sample; a failure on one sample never affects the others."""
        grade = self.grade
        outcomes: list[Outcome] = []
        append = outcomes.append
        for sample in samples:
            try:
                append(grade(sample))
            except MalformedItem as exc:
                append(exc)
            except Exception as exc:  # noqa: BLE001 - one bad rollout must not fail the batch
                append(GraderError(exc))
        return outcomes

    def walk(self) -> list[Grader]:
        """This grader and every grader nested in it."""
        return [self]


GraderT = TypeVar("GraderT", bound=Grader)


def score_fields(fields: Fields) -> dict[str, float]:
    """A spec's ``min_score`` (default 0) and ``max_score`` (default 1), as constructor keywords."""
    return {"min_score": fields.number("min_score", 0.0), "max_score": fields.number("max_score", 1.0)}


def finish_scored(fields: Fields, grader: GraderT) -> GraderT:
    """End a ``build``: no unknown spec keys, and ``max_score`` above ``min_score``."""
    fields.done()
    low, high = grader.score_range
    if high <= low:
        raise SpecError(fields.at("max_score"), "must be greater than min_score")
    return grader


def scaled(fraction: float, low: float, high: float) -> float:
    """Map a fraction in [0, 1] onto [low, high]."""
    return low + (high - low) * fraction


def first_present(obj: dict[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return value
    return None
