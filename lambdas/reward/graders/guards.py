"""Guards: penalties any spec can add on top of its score (``"guards": [...]``).

- ``{"type": "length", "max_chars": 2000, "penalty": 0.5}``: responses longer
  than ``max_chars`` lose ``penalty`` (verbosity and junk padding must not pay).
- ``{"type": "format", "require_regex": "...", "forbid_regex": "...",
  "ignore_case": false, "penalty": 0.5}``: the response must match
  ``require_regex`` (searched anywhere) and must not match ``forbid_regex``.

Each guard reports its penalty (0 or ``-penalty``) as a Metric named after the
guard (``length_penalty``, ``format_penalty`` or its ``name``). The guarded
score range widens downwards by the sum of the penalties.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lambdas.reward.graders.base import Grader, Outcome
from lambdas.reward.items import Sample
from lambdas.reward.spec import Fields, SpecError, item_path

GUARD_TYPES = ("length", "format")


class Guard:
    """A penalty on the response text: ``-penalty`` when the text breaks the guard's rule, else 0."""

    def __init__(self, name: str, penalty: float) -> None:
        self.name = name
        self.penalty = penalty

    def __call__(self, text: str) -> float:
        raise NotImplementedError

    def penalties(self, texts: list[str]) -> list[float]:
        """The penalty of each text, in order."""
        return [self(text) for text in texts]


class LengthGuard(Guard):
    def __init__(self, name: str, max_chars: int, penalty: float) -> None:
        super().__init__(name, penalty)
        self.max_chars = max_chars

    def __call__(self, text: str) -> float:
        return -self.penalty if len(text) > self.max_chars else 0.0

    def penalties(self, texts: list[str]) -> list[float]:
        limit, penalty = self.max_chars, -self.penalty
        return [penalty if len(text) > limit else 0.0 for text in texts]


class FormatGuard(Guard):
    def __init__(
        self, name: str, require: re.Pattern[str] | None, forbid: re.Pattern[str] | None, penalty: float
    ) -> None:
        super().__init__(name, penalty)
        self.require = require
        self.forbid = forbid

    def __call__(self, text: str) -> float:
        if self.require is not None and self.require.search(text) is None:
            return -self.penalty
        if self.forbid is not None and self.forbid.search(text) is not None:
            return -self.penalty
        return 0.0


class Guarded(Grader):
    """A grader with penalties applied to each successful outcome."""

    def __init__(self, inner: Grader, guards: list[Guard]) -> None:
        self.inner = inner
        self.guards = guards
        self.kind = inner.kind
        self.needs_reference = inner.needs_reference
        low, high = inner.score_range
        self.score_range = (low - sum(guard.penalty for guard in guards), high)

    def walk(self) -> list[Grader]:
        return [self, *self.inner.walk()]

    def grade_many(self, samples: Sequence[Sample], deadline: float | None = None) -> list[Outcome]:
        outcomes = self.inner.grade_many(samples, deadline)
        texts = [sample.response for sample in samples]
        # Each guard judges every text in one call (a comprehension, not a call per rollout).
        columns = [(guard.name, guard.penalties(texts)) for guard in self.guards]
        for position, outcome in enumerate(outcomes):
            if type(outcome) is tuple:
                score, metrics = outcome
                penalized = False
                for name, penalties in columns:
                    penalty = penalties[position]
                    if penalty:
                        score += penalty
                        penalized = True
                    metrics.append({"name": name, "value": penalty, "type": "Metric"})
                if penalized:
                    outcomes[position] = (score, metrics)
        return outcomes


def build_guards(inner: Grader, raw: object, path: str) -> Grader:
    if not isinstance(raw, list):
        raise SpecError(path, "must be a list of guard objects")
    guards: list[Guard] = []
    names: set[str] = set()
    for index, entry in enumerate(raw):
        fields = Fields(entry, item_path(path, index))
        kind = fields.string("type", choices=list(GUARD_TYPES))
        if kind == "length":
            name = fields.string("name", "length_penalty")
            guard: Guard = LengthGuard(
                name, fields.integer("max_chars", minimum=1), fields.number("penalty", minimum=0)
            )
        else:
            ignore_case = fields.boolean("ignore_case", False)
            require = fields.regex("require_regex", ignore_case=ignore_case)
            forbid = fields.regex("forbid_regex", ignore_case=ignore_case)
            if require is None and forbid is None:
                raise SpecError(fields.path, "a format guard needs require_regex or forbid_regex")
            name = fields.string("name", "format_penalty")
            guard = FormatGuard(name, require, forbid, fields.number("penalty", minimum=0))
        fields.done()
        if name in names:
            raise SpecError(fields.at("name"), f"duplicate guard name {name!r}: give each guard a distinct name")
        names.add(name)
        guards.append(guard)
    return Guarded(inner, guards) if guards else inner
