"""Free-text grader: token F1 or ROUGE-L F-measure against the reference answer(s).

Both are F-measures, so padding a correct answer with extra text lowers the
score (precision drops); with several references the best match counts.
Tokens are SQuAD-normalised (lower case, no punctuation, no English articles).
ROUGE-L uses a bit-parallel LCS, so long answers stay cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

from lambdas.reward.graders.base import (
    Graded,
    Grader,
    MalformedItem,
    finish_scored,
    first_present,
    scaled,
    score_fields,
)
from lambdas.reward.items import BAD_REFERENCE, Sample
from lambdas.reward.spec import Fields
from lambdas.reward.text import common_count, normalized_tokens

METRICS = ("token_f1", "rouge_l")
_MAX_MEMO = 4096  # remembered scores per grader
_MAX_MEMO_CHARS = 64  # longer texts are scored every time


def token_f1(expected: list[str], actual: list[str]) -> float:
    if not expected or not actual:
        return 1.0 if expected == actual else 0.0
    if expected == actual:
        return 1.0
    common = common_count(expected, actual)
    if common == 0:
        return 0.0
    precision = common / len(actual)
    recall = common / len(expected)
    return 2 * precision * recall / (precision + recall)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Longest common subsequence length (Allison-Dix / Hyyro bit-vector algorithm)."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for position, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << position)
    full = (1 << len(a)) - 1
    row = full
    for token in b:
        match = masks.get(token, 0)
        if match:
            low = row & match
            row = ((row + low) | (row & ~match)) & full
    return len(a) - bin(row).count("1")


def rouge_l(expected: list[str], actual: list[str]) -> float:
    if not expected or not actual:
        return 1.0 if expected == actual else 0.0
    common = lcs_length(expected, actual)
    if common == 0:
        return 0.0
    precision = common / len(actual)
    recall = common / len(expected)
    return 2 * precision * recall / (precision + recall)


def reference_texts(reference: object) -> list[str]:
    if isinstance(reference, dict):
        reference = first_present(reference, ("answer", "final_answer", "text", "answers"))
    if isinstance(reference, str):
        return [reference]
    if isinstance(reference, (int, float)) and not isinstance(reference, bool):
        return [str(reference)]
    if isinstance(reference, list) and reference and all(isinstance(r, str) for r in reference):
        return list(reference)
    raise MalformedItem(BAD_REFERENCE)


class TextSimilarityGrader(Grader):
    kind = "text_similarity"

    def __init__(self, metric: str = "token_f1", *, min_score: float = 0.0, max_score: float = 1.0) -> None:
        self.metric = metric
        self._measure = token_f1 if metric == "token_f1" else rouge_l
        self._memo: dict[tuple[str, str], float] = {}  # (response, reference) -> score, for short texts
        self.min_score = min_score
        self.max_score = max_score
        self.score_range = (min_score, max_score)

    def grade(self, sample: Sample) -> Graded:
        response, reference = sample.response, sample.reference
        # Short texts (a category, a field's value) recur across a batch: their score is remembered.
        short = type(reference) is str and len(response) <= _MAX_MEMO_CHARS and len(reference) <= _MAX_MEMO_CHARS
        best = self._memo.get((response, reference)) if short else None
        if best is None:
            actual = normalized_tokens(response)
            best = max(self._measure(normalized_tokens(text), actual) for text in reference_texts(reference))
            if short and len(self._memo) < _MAX_MEMO:
                self._memo[response, reference] = best
        return scaled(best, self.min_score, self.max_score), [
            {"name": self.metric, "value": float(best), "type": "Reward"}
        ]


def build(fields: Fields, context: object) -> TextSimilarityGrader:
    grader = TextSimilarityGrader(
        fields.string("metric", "token_f1", choices=list(METRICS)),
        **score_fields(fields),
    )
    return finish_scored(fields, grader)
