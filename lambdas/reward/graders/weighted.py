"""Composition: ``{"type": "weighted", "combine": "sum", "graders": {"name": {"weight": w, "grader": {...}}}}``.

``combine`` is ``sum`` (default: the weighted sum of the parts' scores) or
``min`` (the lowest weighted part score). Each part may also set

- ``threshold``: the part counts as its maximum when its score reaches the
  threshold and as its minimum below it (an all-or-nothing part);
- ``gate``: true makes the part a condition instead of a term (no ``weight``):
  unless its score reaches ``threshold`` (default: the part's maximum) the whole
  composition scores its minimum. A schema check as a gate gives invalid output 0.

Every part's score is reported as a Reward metric under its name and its own
metrics follow, prefixed ``<name>.``. A part that cannot grade an item (e.g. it
cannot read its part of the reference) scores its own minimum and reports
``<name>.malformed:<reason>`` while the other parts still count; the item is
malformed only when no scoring part could grade it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lambdas.reward.graders.base import Grader, MalformedItem, Metric, Outcome
from lambdas.reward.items import Sample
from lambdas.reward.spec import Fields, SpecError, child

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
COMBINES = ("sum", "min")


@dataclass
class Part:
    name: str
    weight: float
    grader: Grader
    threshold: float | None = None
    gate: bool = False


class WeightedGrader(Grader):
    kind = "weighted"

    def __init__(self, parts: list[Part], combine: str = "sum") -> None:
        self.parts = parts
        self.combine = combine
        scoring = [part for part in self.parts if not part.gate]
        self.needs_reference = any(part.grader.needs_reference for part in self.parts)
        lows = [part.weight * part.grader.score_range[0] for part in scoring]
        highs = [part.weight * part.grader.score_range[1] for part in scoring]
        self.score_range = (min(lows), min(highs)) if combine == "min" else (sum(lows), sum(highs))

    def walk(self) -> list[Grader]:
        found: list[Grader] = [self]
        for part in self.parts:
            found.extend(part.grader.walk())
        return found

    def grade_many(self, samples: Sequence[Sample], deadline: float | None = None) -> list[Outcome]:
        # Per part: its name, its metrics' prefix, its outcomes, whether it is a gate, its weight, its
        # threshold, its score range and the score a gate needs.
        plan = [
            (
                part.name,
                part.name + ".",
                part.grader.grade_many(samples, deadline),
                part.gate,
                part.weight,
                part.threshold,
                *part.grader.score_range,
                part.grader.score_range[1] if part.threshold is None else part.threshold,
            )
            for part in self.parts
        ]
        outcomes: list[Outcome] = []
        for position in range(len(samples)):
            terms: list[float] = []
            metrics: list[Metric] = []
            gate_closed = False
            failure: MalformedItem | None = None
            graded = 0
            for name, prefix, results, gate, weight, threshold, low, high, bar in plan:
                outcome = results[position]
                if isinstance(outcome, tuple):
                    score, sub_metrics = outcome
                    if threshold is not None:
                        score = high if score >= threshold else low
                    if not gate:
                        graded += 1
                    # A grader's metric entries are its own, made for this outcome: renamed in place.
                    for entry in sub_metrics:
                        entry["name"] = prefix + entry["name"]
                    metrics += sub_metrics
                else:
                    score = low
                    failure = failure or outcome
                    metrics.append({"name": prefix + outcome.metric_name, "value": 1.0, "type": "Metric"})
                metrics.append({"name": name, "value": float(score), "type": "Reward"})
                if gate:
                    gate_closed = gate_closed or score < bar
                else:
                    terms.append(weight * score)
            if graded == 0 and failure is not None:
                outcomes.append(failure)
                continue
            total = min(terms) if self.combine == "min" else sum(terms)
            if gate_closed:
                total = self.score_range[0]
            outcomes.append((total, metrics))
        return outcomes


def build(fields: Fields, context: Any) -> WeightedGrader:
    raw = fields.raw("graders")
    path = fields.at("graders")
    combine = fields.string("combine", "sum", choices=list(COMBINES))
    if not isinstance(raw, dict) or not raw:
        raise SpecError(path, "must be a non-empty object of {name: {weight, grader}}")
    parts: list[Part] = []
    for name, entry in raw.items():
        entry_path = child(path, name)
        if not _NAME.match(name):
            raise SpecError(entry_path, "sub-grader names use letters, digits, '_', '-' and '.'")
        entry_fields = Fields(entry, entry_path)
        gate = entry_fields.boolean("gate", False)
        if gate and "weight" in entry_fields.obj:
            raise SpecError(entry_fields.at("weight"), "a gate has no weight: it multiplies the score by 0 or 1")
        weight = 0.0 if gate else entry_fields.number("weight", minimum=0)
        grader = context.build(entry_fields.raw("grader"), entry_fields.at("grader"))
        threshold = entry_fields.number("threshold", None)
        low, high = grader.score_range
        if threshold is not None and not low < threshold <= high:
            raise SpecError(entry_fields.at("threshold"), f"must be above {low:g} and at most {high:g}")
        entry_fields.done()
        parts.append(Part(name, weight, grader, threshold, gate))
    fields.done()
    if sum(part.weight for part in parts) <= 0:
        raise SpecError(path, "at least one weight must be > 0")
    return WeightedGrader(parts, combine)
