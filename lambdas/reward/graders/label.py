"""Classification grader: the response must name exactly one label, the reference's.

Extraction is tolerant of how models write a label (``HQ.``, ``The answer is
**hq**``, ``"LQ_EDIT"``, ``LQ-EDIT``) but never rewards hedging: a response
naming two or more different labels, or none (empty, junk), gets the ``invalid``
score. Labels match on token boundaries, so ``LQ`` is not found inside
``LQ_EDIT`` and longer labels win over their prefixes.
"""

from __future__ import annotations

import re

from lambdas.reward.graders.base import Graded, Grader, MalformedItem, first_present, metric, reward
from lambdas.reward.items import BAD_REFERENCE, Sample
from lambdas.reward.spec import Fields, SpecError, item_path

_SEPARATORS = re.compile(r"[\s_\-]+")


def _label_key(text: str, case_sensitive: bool) -> str:
    key = _SEPARATORS.sub("_", text.strip())
    return key if case_sensitive else key.casefold()


def _label_pattern(label: str) -> str:
    # "LQ_EDIT" also matches "LQ EDIT" / "lq-edit": models rarely keep the underscore.
    return r"[\s_\-]+".join(re.escape(part) for part in _SEPARATORS.split(label.strip()))


class LabelGrader(Grader):
    kind = "label"

    def __init__(
        self,
        labels: list[str],
        *,
        correct: float = 1.0,
        incorrect: float = 0.0,
        invalid: float | None = None,
        case_sensitive: bool = False,
    ) -> None:
        self.labels = list(labels)
        self.correct = correct
        self.incorrect = incorrect
        self.invalid = incorrect if invalid is None else invalid
        self.case_sensitive = case_sensitive
        self._canonical = {_label_key(label, case_sensitive): label for label in labels}
        alternatives = "|".join(_label_pattern(label) for label in sorted(labels, key=len, reverse=True))
        flags = 0 if case_sensitive else re.IGNORECASE
        self._finder = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", flags)
        scores = (self.correct, self.incorrect, self.invalid)
        self.score_range = (min(scores), max(scores))

    def canonical(self, text: str) -> str | None:
        """The spec's spelling of a label, or None when ``text`` is not one."""
        return self._canonical.get(_label_key(text, self.case_sensitive))

    def reference_label(self, reference: object) -> str:
        if isinstance(reference, dict):
            reference = first_present(reference, ("label", "answer", "final_answer"))
        if isinstance(reference, str):
            label = self.canonical(reference)
            if label is not None:
                return label
        raise MalformedItem(BAD_REFERENCE)

    def labels_in(self, text: str) -> set[str]:
        canonical = self._canonical
        key = _label_key
        sensitive = self.case_sensitive
        return {canonical[key(found, sensitive)] for found in self._finder.findall(text)}

    def grade(self, sample: Sample) -> Graded:
        expected = self.reference_label(sample.reference)
        found = self.labels_in(sample.response)
        if len(found) == 1:
            match = expected in found
            score = self.correct if match else self.incorrect
            return score, [reward("label_match", 1.0 if match else 0.0)]
        reason = "no_label" if not found else "multiple_labels"
        return self.invalid, [reward("label_match", 0.0), metric(reason, 1.0)]


def build(fields: Fields, context: object) -> LabelGrader:
    labels = fields.raw("labels")
    path = fields.at("labels")
    if not isinstance(labels, list) or not labels:
        raise SpecError(path, "must be a non-empty list of strings")
    seen: dict[str, str] = {}
    case_sensitive = fields.boolean("case_sensitive", False)
    for index, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip():
            raise SpecError(item_path(path, index), "must be a non-empty string")
        key = _label_key(label, case_sensitive)
        if key in seen:
            raise SpecError(item_path(path, index), f"duplicates label {seen[key]!r}")
        seen[key] = label
    grader = LabelGrader(
        labels,
        correct=fields.number("correct", 1.0),
        incorrect=fields.number("incorrect", 0.0),
        invalid=fields.number("invalid", None),
        case_sensitive=case_sensitive,
    )
    fields.done()
    # An "invalid" score at or above "correct" is legal but rewards hedging: `verify` reports it.
    if grader.correct <= grader.incorrect:
        raise SpecError(fields.at("correct"), "must be greater than the incorrect score")
    return grader
