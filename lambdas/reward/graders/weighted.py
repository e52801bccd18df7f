"""Weighted composition: ``{"type": "weighted", "graders": {"name": {"weight": w, "grader": {...}}}}``.

The score is the weighted sum of the sub-graders' scores; each sub-score is
reported as a Reward metric under its name and the sub-grader's own metrics
follow, prefixed ``<name>.``. An item one sub-grader cannot grade (e.g. a bad
reference) is malformed for the whole composition.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from lambdas.reward.graders.base import Grader, MalformedItem, Metric, Outcome, reward
from lambdas.reward.items import Sample
from lambdas.reward.spec import Fields, SpecError, child

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class WeightedGrader(Grader):
    kind = "weighted"

    def __init__(self, parts: list[tuple[str, float, Grader]]) -> None:
        self.parts = parts
        self.needs_reference = any(grader.needs_reference for _, _, grader in parts)
        self.score_range = (
            sum(weight * grader.score_range[0] for _, weight, grader in parts),
            sum(weight * grader.score_range[1] for _, weight, grader in parts),
        )

    def walk(self) -> list[Grader]:
        found: list[Grader] = [self]
        for _, _, grader in self.parts:
            found.extend(grader.walk())
        return found

    def grade_many(self, samples: Sequence[Sample], deadline: float | None = None) -> list[Outcome]:
        per_part = [(name, weight, grader.grade_many(samples, deadline)) for name, weight, grader in self.parts]
        outcomes: list[Outcome] = []
        for position in range(len(samples)):
            total = 0.0
            metrics: list[Metric] = []
            failure: MalformedItem | None = None
            for name, weight, results in per_part:
                outcome = results[position]
                if not isinstance(outcome, tuple):
                    failure = outcome
                    break
                score, sub_metrics = outcome
                total += weight * score
                metrics.append(reward(name, score))
                prefix = name + "."
                for entry in sub_metrics:
                    metrics.append({"name": prefix + entry["name"], "value": entry["value"], "type": entry["type"]})
            outcomes.append(failure if failure is not None else (total, metrics))
        return outcomes


def build(fields: Fields, context: Any) -> WeightedGrader:
    raw = fields.raw("graders")
    path = fields.at("graders")
    if not isinstance(raw, dict) or not raw:
        raise SpecError(path, "must be a non-empty object of {name: {weight, grader}}")
    parts: list[tuple[str, float, Grader]] = []
    for name, entry in raw.items():
        entry_path = child(path, name)
        if not _NAME.match(name):
            raise SpecError(entry_path, "sub-grader names use letters, digits, '_', '-' and '.'")
        entry_fields = Fields(entry, entry_path)
        weight = entry_fields.number("weight", minimum=0)
        grader = context.build(entry_fields.raw("grader"), entry_fields.at("grader"))
        entry_fields.done()
        parts.append((name, weight, grader))
    fields.done()
    if sum(weight for _, weight, _ in parts) <= 0:
        raise SpecError(path, "at least one weight must be > 0")
    return WeightedGrader(parts)
