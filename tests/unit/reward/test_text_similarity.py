"""Text-similarity grader: token F1 and ROUGE-L."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.reward.engine import compile_spec
from lambdas.reward.graders.text_similarity import lcs_length, rouge_l, token_f1
from lambdas.reward.text import normalized_tokens

from .support import score


def lcs_by_table(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("abcde"), max_size=30), st.lists(st.sampled_from("abcdef"), max_size=30))
def test_bit_parallel_lcs_equals_the_dynamic_programming_table(a, b):
    assert lcs_length(a, b) == lcs_by_table(a, b)


def test_normalisation_drops_case_punctuation_and_articles():
    assert normalized_tokens("The Court held, in an opinion: REVERSED!") == [
        "court",
        "held",
        "in",
        "opinion",
        "reversed",
    ]


def test_token_f1_and_rouge_l_values():
    reference = normalized_tokens("the court reversed the conviction")
    assert token_f1(reference, normalized_tokens("Court reversed the conviction.")) == 1.0
    assert token_f1(reference, normalized_tokens("conviction reversed")) == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))
    # ROUGE-L cares about order, token F1 does not
    shuffled = normalized_tokens("conviction reversed court")
    assert token_f1(reference, shuffled) == 1.0
    assert rouge_l(reference, shuffled) == pytest.approx(1 / 3)


@pytest.mark.parametrize("metric", ["token_f1", "rouge_l"])
def test_padding_a_correct_answer_lowers_the_score(metric):
    reward = compile_spec({"type": "text_similarity", "metric": metric})
    reference = "The court reversed the conviction because the warnings were not given."
    assert score(reward, reference, reference) == 1.0
    assert score(reward, reference + " lorem ipsum" * 50, reference) < 0.3
    assert score(reward, "", reference) == 0.0


def test_several_references_take_the_best_match():
    reward = compile_spec({"type": "text_similarity"})
    assert score(reward, "Paris", ["London", "Paris"]) == 1.0
    assert score(reward, "Paris", {"answer": "paris"}) == 1.0
    assert score(reward, "42", 42) == 1.0
