"""Label grader: the Stack Overflow question-quality case (HQ, LQ_EDIT, LQ_CLOSE, +1/-1)."""

from __future__ import annotations

import random
import re

import pytest

from lambdas.reward.engine import compile_spec
from lambdas.reward.graders.label import LabelGrader, _label_pattern
from lambdas.reward.spec import SpecError

from .support import grade_one, metrics_of, preset, score

SO = {"type": "label", "labels": ["HQ", "LQ_EDIT", "LQ_CLOSE"], "correct": 1, "incorrect": -1}


@pytest.mark.parametrize(
    "response",
    [
        "HQ",
        "HQ.",
        "The answer is HQ",
        "the answer is hq",
        "**HQ**",
        '"HQ"',
        "Label: `HQ`\nReason: clear question with a reproducible example.",
        "  \n HQ \n",
    ],
)
def test_tolerant_extraction_scores_the_correct_label(response):
    assert score(compile_spec(SO), response, "HQ") == 1.0


@pytest.mark.parametrize("response", ["LQ-EDIT", "lq edit", "LQ_EDIT.", "I'd say **lq_edit**"])
def test_separator_variants_of_a_label_are_the_label(response):
    assert score(compile_spec(SO), response, "LQ_EDIT") == 1.0


@pytest.mark.parametrize(
    "response, reference",
    [
        ("Not HQ; it is LQ_EDIT.", "LQ_EDIT"),
        ("LQ_EDIT (it would need edits to be HQ)", "LQ_EDIT"),
        ("It is not LQ_CLOSE, it is HQ", "HQ"),
        ("This isn't an HQ question. Answer: LQ_CLOSE", "LQ_CLOSE"),
        ("Answer: LQ_EDIT\nReason: with a code sample it could become HQ.", "LQ_EDIT"),
        ("Label: HQ\nNeither LQ_EDIT nor LQ_CLOSE applies.", "HQ"),
        ("It is HQ and not LQ_EDIT or LQ_CLOSE.", "HQ"),
        ("Not LQ_CLOSE, LQ_EDIT.", "LQ_EDIT"),
        ("Not LQ_CLOSE or **LQ_EDIT**: HQ", "HQ"),
        ("I'd classify this as LQ_EDIT.\nWith a reproducible example it would become HQ.", "LQ_EDIT"),
        ("**LQ_CLOSE** - rather than LQ_EDIT, since no edit would save it.", "LQ_CLOSE"),
        ("The question looks HQ at first, but it is unclear.\nFinal answer: LQ_EDIT", "LQ_EDIT"),
    ],
)
def test_the_committed_label_counts_not_labels_negated_or_named_in_the_explanation(response, reference):
    reward = compile_spec(SO)
    assert score(reward, response, reference) == 1.0
    others = [label for label in ("HQ", "LQ_EDIT", "LQ_CLOSE") if label != reference]
    assert [score(reward, response, other) for other in others] == [-1.0, -1.0]


def test_a_wrong_label_scores_incorrect():
    result = grade_one(compile_spec(SO), "LQ_CLOSE", "HQ")
    assert result["aggregate_reward_score"] == -1.0
    assert metrics_of(result)["label_match"] == 0.0


@pytest.mark.parametrize(
    "response, reason",
    [
        ("HQ or LQ_EDIT", "multiple_labels"),
        ("HQ, LQ_EDIT, LQ_CLOSE", "multiple_labels"),
        ("HQ/LQ_EDIT", "multiple_labels"),
        ("Answer: HQ (or maybe LQ_EDIT)", "multiple_labels"),
        ("It could be HQ; it could be LQ_EDIT too.", "multiple_labels"),
        ("LQ_CLOSE, LQ_EDIT or HQ?", "multiple_labels"),
        ("Answer: HQ\nThen again: HQ, LQ_EDIT, LQ_CLOSE", "multiple_labels"),
        ("HQ. Or LQ_EDIT. Or LQ_CLOSE.", "multiple_labels"),
        ("Not HQ.", "no_label"),
        ("HQ\n\nLQ_EDIT", "multiple_labels"),
        ("Answer: HQ\nLQ_CLOSE", "multiple_labels"),
        ("I would pick HQ.\nLQ_EDIT", "multiple_labels"),
        ("", "no_label"),
        ("   ", "no_label"),
        ("asdf qwer zxcv lorem ipsum", "no_label"),
        ("HQQ", "no_label"),
        ("LQ_EDITED", "no_label"),
    ],
)
def test_hedging_empty_and_junk_responses_are_never_correct(response, reason):
    result = grade_one(compile_spec(SO), response, "HQ")
    assert result["aggregate_reward_score"] == -1.0
    assert metrics_of(result)[reason] == 1.0


def test_labels_that_are_prefixes_of_others_match_on_token_boundaries():
    # Given labels where one is a prefix of another
    reward = compile_spec({"type": "label", "labels": ["LQ", "LQ_EDIT"]})
    # Then LQ_EDIT is not also read as LQ, and LQ alone is LQ
    assert score(reward, "LQ_EDIT", "LQ_EDIT") == 1.0
    assert score(reward, "LQ_EDIT", "LQ") == 0.0
    assert score(reward, "LQ.", "LQ") == 1.0


def test_invalid_score_is_configurable_and_sets_the_range():
    reward = compile_spec({**SO, "incorrect": 0, "invalid": -1})
    assert reward.score_range == (-1.0, 1.0)
    assert score(reward, "LQ_CLOSE", "HQ") == 0.0
    assert score(reward, "", "HQ") == -1.0


def test_case_sensitive_labels_ignore_lowercase_words():
    # Given multiple-choice letters, where "a" is also an English word
    reward = compile_spec({"type": "label", "labels": ["A", "B", "C", "D"], "case_sensitive": True})
    assert score(reward, "B is a better choice than the rest", "B") == 1.0
    assert score(reward, "a", "A") == 0.0


@pytest.mark.parametrize("reference", ["hq", {"label": "HQ"}, {"answer": "HQ"}, {"final_answer": "hq"}])
def test_reference_forms(reference):
    assert score(compile_spec(SO), "HQ", reference) == 1.0


def test_unknown_reference_label_is_malformed():
    result = grade_one(compile_spec(SO), "HQ", "MEDIUM")
    assert metrics_of(result) == {"malformed:bad_reference": 1.0}
    assert result["aggregate_reward_score"] == -1.0


def test_classification_preset_scores_plus_one_minus_one_and_penalises_padding():
    reward = preset("classification")
    assert score(reward, "HQ", "HQ") == 1.0
    assert score(reward, "LQ_EDIT", "HQ") == -1.0
    padded = grade_one(reward, "HQ " + "filler " * 400, "HQ")
    assert padded["aggregate_reward_score"] == 0.0
    assert metrics_of(padded)["length_penalty"] == -1.0


@pytest.mark.parametrize(
    "spec, path",
    [
        ({"type": "label", "labels": []}, "labels"),
        ({"type": "label", "labels": ["HQ", "hq"]}, "labels[1]"),
        ({"type": "label", "labels": ["HQ", ""]}, "labels[1]"),
        ({"type": "label", "labels": ["HQ"], "correct": 0, "incorrect": 1}, "correct"),
        ({"type": "label", "labels": ["HQ"], "corect": 1}, "corect"),
        ({"type": "label", "labels": ["HQ"], "correct": "1"}, "correct"),
    ],
)
def test_bad_label_specs_name_the_field(spec, path):
    with pytest.raises(SpecError) as raised:
        compile_spec(spec)
    assert raised.value.path == path


@pytest.mark.parametrize(
    "labels",
    [
        ["HQ", "LQ_EDIT", "LQ_CLOSE"],
        ["A B", "B"],  # a label inside another, after a space
        ["yes", "no"],  # "no" inside "piano", "not", "know"
        ["K", "s2"],  # letters with non-ASCII case partners (Kelvin sign, long s)
        ["Straße", "x"],  # a non-ASCII label: the finder alone
        ["_x", "y"],  # a label opening with a separator
        ["[x]", "^y", "\\z", "-w"],  # regex metacharacters
    ],
)
@pytest.mark.parametrize("case_sensitive", [False, True])
def test_labels_are_found_where_the_plain_lookbehind_regex_finds_them(labels, case_sensitive) -> None:
    grader = LabelGrader(labels, case_sensitive=case_sensitive)
    alternatives = "|".join(_label_pattern(label) for label in sorted(labels, key=len, reverse=True))
    plain = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", 0 if case_sensitive else re.IGNORECASE)
    pieces = ["HQ", "hq", "LQ_EDIT", "lq edit", "xHQ", "_HQ", " ", "not ", "piano", "é", "K", "\u212a", "ſ", "s"]
    pieces += [
        "A B",
        "a b",
        "-",
        "_",
        "1",
        "ß",
        "İ",
        "ı",
        "\n",
        "Σ",
        "ς",
        *labels,
        *(label.upper() for label in labels),
    ]
    rng = random.Random(f"labels-{labels}-{case_sensitive}")
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        expected = [(match.span(), grader.canonical(match.group())) for match in plain.finditer(text)]
        found = [(match.span(), grader.canonical(match.group())) for match in grader._label_matches(text)]
        assert found == expected, text


def test_negation_read_once_per_window_gives_what_reading_every_mention_gives(monkeypatch) -> None:
    """With many mentions, each distinct window before a mention is read once: the mentions are the same."""
    from lambdas.reward.graders import label as label_module

    grader = LabelGrader(["HQ", "LQ_EDIT", "LQ_CLOSE"])
    pieces = ["HQ", "LQ_EDIT", "lq close", " ", ", ", " or ", " nor ", "not ", "isn't ", "rather than ", "the "]
    pieces += ["a ", "\n", "never ", "n't ", "neither ", "x", "é", "**", "without ", "labeled ", "no longer "]
    rng = random.Random("negation-windows")
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(60, 400)))
        monkeypatch.setattr(label_module, "_MANY_MENTIONS", 10**9)
        expected = grader.mentions(text)
        monkeypatch.setattr(label_module, "_MANY_MENTIONS", 0)
        assert grader.mentions(text) == expected, text
