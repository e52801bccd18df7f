"""Numeric grader: FinQA percentages, GSM8K "####" answers, tolerance and partial credit."""

from __future__ import annotations

import pytest

from lambdas.reward.engine import compile_spec
from lambdas.reward.spec import SpecError

from .support import grade_one, metrics_of, preset, score

STRICT = {"type": "numeric", "rel_tol": 0.01}


@pytest.mark.parametrize(
    "response, reference",
    [
        ("ANSWER: 65.3%", 0.653),
        ("ANSWER: 65.3%", "65.3%"),
        ("ANSWER: 0.653", "65.3%"),
        ("ANSWER: 65.3", "65.3%"),
        ("ANSWER: 65.3 percent", 0.653),
        ("The change was computed as (5.2 - 3.1) / 3.1.\nANSWER: 67.7%", {"answer": "67.7%"}),
        ("ANSWER: 0.65", 0.653),  # within 1%
    ],
)
def test_finqa_percent_and_decimal_forms_match(response, reference):
    assert score(compile_spec(STRICT), response, reference) == 1.0


def test_a_bare_decimal_does_not_match_a_bare_percentage_number():
    # 65.3 (no percent sign) is not 0.653: only an explicit % allows both readings
    assert score(compile_spec(STRICT), "ANSWER: 65.3", 0.653) == 0.0


@pytest.mark.parametrize(
    "response, reference",
    [("ANSWER: 16%", 16), ("ANSWER: 1600%", 1600), ("ANSWER: 16%", "16"), ("\\boxed{16\\%}", 16)],
)
def test_a_percent_answer_does_not_match_the_bare_number_it_is_written_with(response, reference):
    # 16% is 0.16: it matches a reference of 0.16 or 16%, not 16
    result = grade_one(compile_spec(STRICT), response, reference)
    assert result["aggregate_reward_score"] == 0.0
    assert metrics_of(result)["numeric_match"] == 0.0


def test_a_percent_answer_never_gets_partial_credit_from_its_bare_reading():
    reward = compile_spec({**STRICT, "partial_credit_until": 5})
    assert score(reward, "ANSWER: 16.4%", 16) == 0.0
    assert score(reward, "ANSWER: 16.4%", 0.16) == pytest.approx(0.625)


@pytest.mark.parametrize("reference", [16, 0.16, "16%"])
@pytest.mark.parametrize("response", ["ANSWER: 16%\n#### 0.16", "ANSWER: 0.16\n#### 16%", "ANSWER: 16% or 0.16"])
def test_a_percent_and_its_fraction_offered_together_are_a_hedge(response, reference):
    result = grade_one(compile_spec(STRICT), response, reference)
    assert result["aggregate_reward_score"] == 0.0
    assert metrics_of(result)["hedged"] == 1.0


def test_percentages_written_without_a_sign_are_opt_in():
    # Given a fraction reference and an answer that gives it in percent units without "%"
    default = compile_spec(STRICT)
    opted = compile_spec({**STRICT, "unsigned_percent": True})
    # Then only the opt-in option reads 6.65 as 6.65%
    assert score(default, "ANSWER: 6.65", 0.06655) == 0.0
    assert score(opted, "ANSWER: 6.65", 0.06655) == 1.0
    # and the option adds a reading without removing the plain one
    assert score(opted, "ANSWER: 0.06655", 0.06655) == 1.0
    assert score(opted, "ANSWER: 12", 12) == 1.0
    assert score(opted, "ANSWER: 16%", 16) == 0.0


def test_unsigned_percent_must_be_a_boolean():
    with pytest.raises(SpecError, match="unsigned_percent"):
        compile_spec({**STRICT, "unsigned_percent": "yes"})


@pytest.mark.parametrize(
    "response, reference",
    [
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nShe sold 48+24 = <<48+24=72>>72 clips.\n#### 72", "72"),
        ("#### 16", 16),
        ("She pays 3 * 4 = 12 dollars, then 4 more.\n#### 16", {"final_answer": "16"}),
        ("The total is $1,234.", 1234),
        ("ANSWER: $1,234,567.89", "1234567.89"),
        ("ANSWER: -12.5", {"answer": "-12.5"}),
        ("ANSWER: \u221212.5", -12.5),
        ("So the answer is \\boxed{16}.", "16"),
        ("\\boxed{\\frac{1}{4}}", 0.25),
        ("\\boxed{25\\%}", 0.25),
        ("ANSWER: 16.", "16"),
        ("Answer = 3e3", 3000),
    ],
)
def test_gsm8k_and_other_number_formats(response, reference):
    assert score(compile_spec(STRICT), response, reference) == 1.0


def test_the_marked_answer_wins_over_the_last_number():
    # Given reasoning that mentions 20 after the marked answer
    response = "ANSWER: 16\nCheck: 4 * 4 = 16, not 20"
    assert score(compile_spec(STRICT), response, 16) == 1.0
    assert score(compile_spec(STRICT), response, 20) == 0.0


def test_without_a_marker_the_last_number_counts_at_unmarked_credit():
    reward = compile_spec({**STRICT, "unmarked_credit": 0.5})
    result = grade_one(reward, "First 3 apples, then 5 more, so 8", 8)
    assert result["aggregate_reward_score"] == 0.5
    assert metrics_of(result)["answer_marked"] == 0.0


@pytest.mark.parametrize("response", ["ANSWER: 15, 17, 16", "#### 15\n#### 16", "ANSWER: 16 or 17"])
def test_disagreeing_marked_answers_are_hedging(response):
    result = grade_one(compile_spec(STRICT), response, 16)
    assert result["aggregate_reward_score"] == 0.0
    assert metrics_of(result)["hedged"] == 1.0


def test_agreeing_marked_answers_are_fine():
    assert score(compile_spec(STRICT), "ANSWER: \\boxed{16}", 16) == 1.0
    assert score(compile_spec(STRICT), "ANSWER: 65.3% (65.3)", "65.3%") == 1.0


def test_parentheses_negatives_are_opt_in():
    assert score(compile_spec(STRICT), "ANSWER: (1,234)", -1234) == 0.0
    assert score(compile_spec({**STRICT, "parentheses_negative": True}), "ANSWER: (1,234)", -1234) == 1.0


def test_partial_credit_decays_linearly_to_zero_at_the_multiple_of_the_tolerance():
    # Given a tolerance of 1 (1% of 100) and credit until 5x the tolerance
    reward = compile_spec({"type": "numeric", "rel_tol": 0.01, "partial_credit_until": 5})
    credits = [score(reward, f"ANSWER: {value}", 100) for value in (101, 102, 103, 104, 105, 106)]
    # Then credit is full within the tolerance, then falls by a quarter per tolerance step
    assert credits == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0, 0.0])


def test_scores_map_credit_between_incorrect_and_correct():
    reward = compile_spec({"type": "numeric", "correct": 2, "incorrect": -1, "invalid": -2})
    assert reward.score_range == (-2.0, 2.0)
    assert score(reward, "ANSWER: 1", 1) == 2.0
    assert score(reward, "ANSWER: 3", 1) == -1.0
    assert score(reward, "no number here", 1) == -2.0


@pytest.mark.parametrize("response", ["", "I cannot solve this.", "ANSWER: unknown"])
def test_no_number_is_invalid(response):
    result = grade_one(compile_spec(STRICT), response, 16)
    assert result["aggregate_reward_score"] == 0.0
    assert metrics_of(result)["no_number"] == 1.0


@pytest.mark.parametrize(
    "reference",
    [True, "no number", [1, 2], {"other": 1}, "15 or 16 #### 15\n#### 16", "maybe", {"answer": {"answer": "1"}}],
)
def test_unusable_references_are_malformed(reference):
    assert metrics_of(grade_one(compile_spec(STRICT), "ANSWER: 1", reference)) == {"malformed:bad_reference": 1.0}


def test_numbers_inside_words_are_not_answers():
    # "Q3" and "v2" are not numbers; the 7 is
    assert score(compile_spec(STRICT), "In Q3 of v2 they sold 7", 7) == 1.0
    assert score(compile_spec(STRICT), "In Q3 they sold many", 3) == 0.0


def test_numeric_preset_shapes():
    reward = preset("numeric")
    assert reward.score_range == (-0.5, 1.0)
    assert score(reward, "ANSWER: 65.3%", 0.653) == 1.0
    assert score(reward, "#### 16", "16") == 1.0
    assert score(reward, "so 16", "16") == 0.5
    assert score(reward, "ANSWER: (42)", -42) == 1.0


@pytest.mark.parametrize(
    "spec, path",
    [
        ({"type": "numeric", "rel_tol": -0.1}, "rel_tol"),
        ({"type": "numeric", "rel_tol": 0, "abs_tol": 0}, "abs_tol"),
        ({"type": "numeric", "partial_credit_until": 0.5}, "partial_credit_until"),
        ({"type": "numeric", "unmarked_credit": 2}, "unmarked_credit"),
        ({"type": "numeric", "tolerance": 0.1}, "tolerance"),
    ],
)
def test_bad_numeric_specs_name_the_field(spec, path):
    with pytest.raises(SpecError) as raised:
        compile_spec(spec)
    assert raised.value.path == path


@pytest.mark.parametrize(
    "response, reference, expected",
    [
        ("The ratio rose from 1.2 to 1.4.\nANSWER: Yes", "yes", 1.0),
        ("ANSWER: no", "No", 1.0),
        ("ANSWER: TRUE", "yes", 1.0),
        ("#### false", {"answer": "no"}, 1.0),
        ("ANSWER: yes", {"answer": None, "final_answer": "Yes"}, 1.0),
        ("\\boxed{yes}", "yes", 1.0),
        ("ANSWER: no", "yes", 0.0),
        ("ANSWER: yes", "no", 0.0),
        ("Yes, revenue grew in 2019: 120 vs 100.", "yes", 1.0),
        ("Revenue grew: 120 vs 100.\nNo.", "yes", 0.0),
    ],
)
def test_yes_no_references_are_graded_as_a_label_match(response, reference, expected):
    result = grade_one(compile_spec(STRICT), response, reference)
    assert result["aggregate_reward_score"] == expected
    assert metrics_of(result)["reading:yes_no"] == 1.0
    assert "malformed:bad_reference" not in metrics_of(result)


@pytest.mark.parametrize("response", ["ANSWER: yes or no", "ANSWER: yes\n#### no", "ANSWER: true / false"])
def test_a_yes_no_hedge_is_invalid(response):
    result = grade_one(compile_spec({**STRICT, "invalid": -1}), response, "yes")
    assert result["aggregate_reward_score"] == -1.0
    assert metrics_of(result)["hedged"] == 1.0


@pytest.mark.parametrize("response", ["", "ANSWER: 42", "It did not change; yes it is odd that no one noticed 42"])
def test_a_yes_no_reference_needs_a_yes_or_no_final_answer(response):
    result = grade_one(compile_spec({**STRICT, "invalid": -1}), response, "no")
    assert result["aggregate_reward_score"] == -1.0
    assert metrics_of(result)["no_yes_no"] == 1.0


def test_yes_no_answers_without_a_marker_earn_unmarked_credit():
    reward = preset("numeric")
    assert score(reward, "ANSWER: yes", "yes") == 1.0
    assert score(reward, "yes", "yes") == 0.5
    assert score(reward, "ANSWER: maybe", "yes") == 0.0


def _general_final_answer(parser, text):
    """The final answer as the general path reads it: every marked number, the first one the answer."""
    from lambdas.reward.graders.numeric import agree

    numbers = parser.marked(text)
    if not numbers:
        return parser.last_number(text), False, False
    anchor = numbers[0]
    return anchor, True, any(other is not anchor and not agree(anchor, other) for other in numbers[1:])


@pytest.mark.parametrize("parentheses_negative", [False, True])
def test_a_single_plain_marked_answer_read_in_place_is_what_the_general_path_reads(parentheses_negative):
    """Texts with one marker (and some with several) give the same answer through the in-place reading."""
    import math
    import random

    from lambdas.reward.graders.numeric import NumberParser

    parser = NumberParser(parentheses_negative)
    pieces = ["ANSWER:", "answer =", "Answer**:", "####", "#####", "\\boxed{", "}", " ", "\n", "\r", "\t", "16"]
    pieces += ["-", "+", "$", "1,234", "0.5", ".5", "%", ".", "(", ")", "x", "yes", "1e3", "9" * 400, "\u2212"]
    rng = random.Random("numeric-final-answer")
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        got, want = parser.final_answer(text), _general_final_answer(parser, text)
        assert got[1:] == want[1:], text
        if want[0] is None:
            assert got[0] is None, text
        else:
            assert got[0] is not None, text
            assert got[0].percent == want[0].percent, text
            assert got[0].value == want[0].value or (math.isnan(got[0].value) and math.isnan(want[0].value)), text


def _plain_by_regex(text):
    from lambdas.reward.graders.numeric import _PLAIN_NUMBER, _plain_number

    match = _PLAIN_NUMBER.fullmatch(text)
    return None if match is None else _plain_number(match)


def test_plain_number_reads_exactly_what_the_plain_number_pattern_reads():
    import math
    import random

    from lambdas.reward.graders.numeric import plain_number

    pieces = ["1", "0", "7", "42", ".", ",", ",000", "-", "+", "%", " ", "\t", "$", "e", "٣", "\u2212", "x", "12.5"]
    rng = random.Random(11)
    texts = ["16", "-0.5", ".5", "+.5", "5.", "5.%", "65.3%", "65.3 %", "1,234.5", "$12", "-0", "%", "", " 7 "]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 6))) for _ in range(20000)]
    for text in texts:
        fast, slow = plain_number(text), _plain_by_regex(text)
        assert (fast is None) == (slow is None), text
        if fast is not None and slow is not None:
            assert fast.percent == slow.percent, text
            assert fast.value == slow.value and math.copysign(1, fast.value) == math.copysign(1, slow.value), text


def test_answer_markers_are_every_marker_in_text_order():
    import random
    import re

    from lambdas.reward.graders.numeric import _markers

    # The definition the substring searches implement: "answer" with "nswer" in one case, not inside
    # a word, then ":" or "=" (spaces and "*" allowed between); runs of four or more "#"; "\boxed{".
    answer = re.compile(r"(?<![^\W_])[aA](?:nswer|NSWER)\s*\**\s*[:=]")
    hashes = re.compile(r"#{4,}")
    boxed = re.compile(r"\\boxed\s*\{")
    pieces = ["answer", "ANSWER", "Answer", "aNSWER", "AnSwer", "nswer", ":", "=", " ", "*", "#", "####", "x", "_"]
    pieces += ["\\boxed{", "}", "1", "\n", "é"]
    rng = random.Random(5)
    texts = ["ANSWER: 1 answer= 2 Answer **: 3", "canswer: 1", "_answer: 1", "#####", "\\boxed {2}"]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))) for _ in range(20000)]
    for text in texts:
        expected = sorted(
            [(m.start(), m.end(), False) for m in answer.finditer(text)]
            + [(m.start(), m.end(), False) for m in hashes.finditer(text)]
            + [(m.start(), m.end(), True) for m in boxed.finditer(text)]
        )
        assert _markers(text) == expected, text
