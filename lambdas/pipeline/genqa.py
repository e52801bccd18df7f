"""The ``gen_qa`` metrics, computed in Python for evaluations that run through Bedrock inference.

The SageMaker road's ``gen_qa`` evaluation is a lighteval task (its results sit under the task key
``custom|gen_qa_gen_qa|0``, docs/contracts/job-outputs.md), so the metrics here follow lighteval's definitions,
under the names the SageMaker road's results are read with (:func:`lambdas.pipeline.outputs.metric_name`), so the
gate and the metrics table read both roads alike:

- ``exact_match``: 1 when the answer equals the reference after stripping surrounding whitespace, else 0 (an empty
  answer scores 0);
- ``quasi_exact_match``: the same after :func:`normalize` of both strings;
- ``f1_score``: the F1 of the *sets* of whitespace-separated tokens of the reference and the answer (precision =
  shared / answer tokens, recall = shared / reference tokens; 0 when either set is empty or nothing is shared);
  ``f1_score_quasi``: the same after :func:`normalize`;
- ``rouge1``, ``rouge2``, ``rougel``: the ROUGE-1, ROUGE-2 and ROUGE-L F-measures of the answer against the
  reference, on the tokens of :func:`rouge_tokens` (lower case, runs of ``[a-z0-9]``; no stemming), n-gram overlap
  counted with multiplicity, ROUGE-L by the longest common subsequence;
- ``bleu``: corpus BLEU as sacreBLEU computes it with its defaults (13a tokenization, case kept, up to 4-grams,
  ``exp`` smoothing, brevity penalty over the summed lengths), on a 0-100 scale. It is a *corpus* metric: each row
  contributes its n-gram statistics (:func:`bleu_statistics`) and :func:`corpus_bleu` computes the score from
  their sums, so a resumable evaluation can keep per-row statistics and score once at the end.

Every row metric but ``bleu`` is averaged over the rows (a row the model did not answer scores 0).
"""

from __future__ import annotations

import contextlib
import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

from lambdas.reward.graders.text_similarity import lcs_length

MAX_NGRAM = 4
# The metric names, as the SageMaker road's gen_qa results are normalized.
ROW_METRICS = (
    "exact_match",
    "quasi_exact_match",
    "f1_score",
    "f1_score_quasi",
    "rouge1",
    "rouge2",
    "rougel",
)
BLEU = "bleu"

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_TOKEN_SPLIT = re.compile(" |-")
_ROUGE_TOKEN = re.compile(r"[a-z0-9]+")
# sacreBLEU's 13a tokenizer (mteval-v13a), applied in this order.
_BLEU_RULES = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)


def normalize(text: str) -> str:
    """The "quasi" normalization (HELM's, from the QuAC scorer): each space- or hyphen-separated piece is
    lower-cased, stripped of ASCII punctuation, read as a number when it is one (``1`` becomes ``1.0``; the
    punctuation goes first, so ``1.0`` becomes ``10.0``, as in the original), stripped of the articles a/an/the
    and of extra whitespace; empty pieces are dropped."""
    pieces = []
    for piece in _TOKEN_SPLIT.split(text):
        piece = "".join(ch for ch in piece.lower() if ch not in _PUNCTUATION)
        with contextlib.suppress(ValueError):
            piece = str(float(piece))
        piece = " ".join(_ARTICLES.sub(" ", piece).split())
        if piece:
            pieces.append(piece)
    return " ".join(pieces).strip()


def exact_match(reference: str, answer: str) -> float:
    if not answer:
        return 0.0
    return 1.0 if reference.strip() == answer.strip() else 0.0


def quasi_exact_match(reference: str, answer: str) -> float:
    if not answer:
        return 0.0
    return 1.0 if normalize(reference.strip()) == normalize(answer.strip()) else 0.0


def token_f1(reference: str, answer: str) -> float:
    """F1 over the sets of whitespace-separated tokens."""
    gold, predicted = set(reference.split()), set(answer.split())
    shared = len(gold & predicted)
    if not gold or not predicted or not shared:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(gold)
    return 2 * precision * recall / (precision + recall)


def rouge_tokens(text: str) -> list[str]:
    """ROUGE's default tokens: lower case, runs of ASCII letters and digits (anything else separates)."""
    return _ROUGE_TOKEN.findall(text.lower())


def _f_measure(overlap: int, predicted: int, reference: int) -> float:
    precision = overlap / max(predicted, 1)
    recall = overlap / max(reference, 1)
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def rouge_n(reference: str, answer: str, n: int) -> float:
    gold, predicted = _ngrams(rouge_tokens(reference), n), _ngrams(rouge_tokens(answer), n)
    overlap = sum(min(count, predicted[gram]) for gram, count in gold.items())
    return _f_measure(overlap, sum(predicted.values()), sum(gold.values()))


def _lcs_length(first: list[str], second: list[str]) -> int:
    """The length of the longest common subsequence: the graders' bit-parallel one, with a bit per token of the
    shorter sequence, so a long answer costs one big-integer step per token (not the product of both lengths)."""
    short, long = (first, second) if len(first) <= len(second) else (second, first)
    return lcs_length(short, long)


def rouge_l(reference: str, answer: str) -> float:
    gold, predicted = rouge_tokens(reference), rouge_tokens(answer)
    if not gold or not predicted:
        return 0.0
    return _f_measure(_lcs_length(gold, predicted), len(predicted), len(gold))


def bleu_tokens(text: str) -> list[str]:
    """sacreBLEU's 13a tokens of one segment (trailing whitespace removed first, as sacreBLEU does)."""
    line = text.rstrip().replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, replacement in _BLEU_RULES:
        line = pattern.sub(replacement, line)
    return line.split()


def bleu_statistics(reference: str, answer: str) -> list[int]:
    """One row's BLEU sufficient statistics: ``[answer length, reference length, matches of 1..4-grams,
    answer 1..4-grams]`` (matches clipped by the reference's counts)."""
    gold, predicted = bleu_tokens(reference), bleu_tokens(answer)
    matches, totals = [0] * MAX_NGRAM, [0] * MAX_NGRAM
    for n in range(1, MAX_NGRAM + 1):
        gold_grams = _ngrams(gold, n)
        for gram, count in _ngrams(predicted, n).items():
            totals[n - 1] += count
            matches[n - 1] += min(count, gold_grams[gram])
    return [len(predicted), len(gold), *matches, *totals]


def corpus_bleu(statistics: Iterable[Sequence[int]]) -> float:
    """Corpus BLEU (0-100) from rows' :func:`bleu_statistics`, with sacreBLEU's ``exp`` smoothing: an order with
    no match counts as precision 100 / (2^k x its n-gram count), k the number of such orders so far."""
    summed = [0] * (2 + 2 * MAX_NGRAM)
    for row in statistics:
        summed = [total + value for total, value in zip(summed, row, strict=True)]
    answer_length, reference_length = summed[0], summed[1]
    matches, totals = summed[2 : 2 + MAX_NGRAM], summed[2 + MAX_NGRAM :]
    if not any(matches):
        return 0.0
    penalty = 1.0
    if answer_length < reference_length:
        penalty = math.exp(1 - reference_length / answer_length) if answer_length > 0 else 0.0
    precisions = [0.0] * MAX_NGRAM
    smoothing = 1.0
    for n in range(MAX_NGRAM):
        if totals[n] == 0:
            break
        if matches[n] == 0:
            smoothing *= 2
            precisions[n] = 100.0 / (smoothing * totals[n])
        else:
            precisions[n] = 100.0 * matches[n] / totals[n]
    logs = [math.log(p) if p > 0 else -9999999999.0 for p in precisions]
    return penalty * math.exp(sum(logs) / MAX_NGRAM)


def row_scores(reference: str, answer: str) -> dict[str, float]:
    """The per-row metrics of one answer (:data:`ROW_METRICS`)."""
    quasi_reference, quasi_answer = normalize(reference), normalize(answer)
    return {
        "exact_match": exact_match(reference, answer),
        "quasi_exact_match": quasi_exact_match(reference, answer),
        "f1_score": token_f1(reference, answer),
        "f1_score_quasi": token_f1(quasi_reference, quasi_answer),
        "rouge1": rouge_n(reference, answer, 1),
        "rouge2": rouge_n(reference, answer, 2),
        "rougel": rouge_l(reference, answer),
    }
