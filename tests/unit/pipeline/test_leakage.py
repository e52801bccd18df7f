"""The leakage check: evaluation prompts found, whitespace-normalised, among training prompts."""

from __future__ import annotations

from lambdas.pipeline import leakage


def test_prompts_equal_after_whitespace_normalisation_are_counted_once_per_split() -> None:
    found = leakage.find_leaks(
        ["What is 2 + 2?", "Name a prime.", "What is 2 + 2?", "Unseen"],
        {
            "sft": ["  What is\n2 +  2?\t", "What is 2 + 2?", "Other"],
            "rft": iter(["Name a prime.", "What is 2+2?"]),
        },
    )
    assert found.eval_prompts == 3  # the repeated evaluation prompt counts once
    assert found.found == {"sft": 1, "rft": 1}
    assert found.examples == ["Name a prime.", "What is 2 + 2?"]
    assert found.leaked
    assert found.warnings() == [
        "1 of 3 evaluation prompts appear verbatim in the sft data: their scores measure memory, not learning",
        "1 of 3 evaluation prompts appear verbatim in the rft data: their scores measure memory, not learning",
    ]


def test_a_split_without_leaks_is_reported_with_zero() -> None:
    found = leakage.find_leaks(["q1", "q2"], {"sft": ["q3"], "rft": []})
    assert found.found == {"sft": 0, "rft": 0} and not found.leaked and found.warnings() == []


def test_a_substring_or_a_different_case_is_not_a_leak() -> None:
    found = leakage.find_leaks(["What is 2 + 2?"], {"sft": ["what is 2 + 2?", "Q: What is 2 + 2? A:"]})
    assert found.found == {"sft": 0}


def test_long_examples_are_cut() -> None:
    prompt = "word " * 40
    found = leakage.find_leaks([prompt], {"sft": [prompt]})
    [example] = found.examples
    assert len(example) == leakage.EXAMPLE_CHARS and example.endswith("\u2026")
