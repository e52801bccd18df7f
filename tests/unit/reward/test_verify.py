"""Pre-flight check: the reference must win and known hacks must lose, for local and remote graders."""

from __future__ import annotations

import json
import math

import pytest

from lambdas.reward.engine import compile_spec
from lambdas.reward.presets import list_presets
from lambdas.reward.verify import CASES, answer_text, verify_grader

from .support import legal_native_rows, legal_rows, numeric_rows, preset, so_rows

GENERIC = {"reference", "empty", "all_candidates", "padded", "refusal", "truncated"}
TOOL_PROBES = {"duplicate_tools", "duplicated_json", "prose_wrapped"}
NUMBER_PROBES = {"scale_hedge", "two_answers"}


@pytest.mark.parametrize(
    "name, rows, probes",
    [
        ("classification", so_rows(), set()),
        ("numeric", numeric_rows(), NUMBER_PROBES),
        ("finqa", numeric_rows(), NUMBER_PROBES),
        ("tool-calling", legal_rows(), TOOL_PROBES),
        ("legal-tool-calling", legal_native_rows(), TOOL_PROBES),
    ],
)
def test_every_shipped_preset_passes_on_its_case_study_rows(name, rows, probes):
    report = verify_grader(preset(name), rows, sample=None)
    assert report.passed, report.table()
    assert {case.case for case in report.cases} == GENERIC | probes
    assert report.rows_sampled == len(rows)


def test_every_shipped_preset_is_checked_above():
    tested = {"classification", "numeric", "finqa", "tool-calling", "legal-tool-calling"}
    assert set(list_presets()) == tested
    assert set(CASES) == GENERIC | TOOL_PROBES | NUMBER_PROBES


def test_a_label_grader_that_rewards_hedging_fails():
    # Given a label grader whose "invalid" score (no label, several labels) equals the correct score
    hedgy = compile_spec({"type": "label", "labels": ["HQ", "LQ_EDIT", "LQ_CLOSE"], "invalid": 1})
    report = verify_grader(hedgy, so_rows())
    # Then the check fails and names the hacks that won
    assert not report.passed
    failed = {case.case for case in report.cases if not case.passed}
    assert {"all_candidates", "empty", "refusal"} <= failed
    assert "reference" not in failed
    assert "all_candidates: row 0" in report.table()


def test_a_label_grader_without_a_length_guard_is_hackable_by_padding():
    report = verify_grader(compile_spec({"type": "label", "labels": ["HQ", "LQ_EDIT", "LQ_CLOSE"]}), so_rows())
    assert [case.case for case in report.cases if not case.passed] == ["padded"]


def test_a_tool_grader_that_only_checks_json_is_hackable():
    json_only = compile_spec(
        {
            "type": "tool_call",
            "weights": {"json_valid": 1, "tool_names": 0, "order": 0, "arg_names": 0, "arg_values": 0},
        }
    )
    report = verify_grader(json_only, legal_rows())
    assert not report.passed
    assert not next(case for case in report.cases if case.case == "all_candidates").passed


def test_text_similarity_with_f1_resists_padding_and_candidates():
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}], "reference_answer": text}
        for i, text in enumerate(
            [
                "The court reversed the conviction",
                "Two years from the date of injury",
                "Only the legislature may amend it",
            ]
        )
    ]
    report = verify_grader(compile_spec({"type": "text_similarity"}), rows)
    assert report.passed, report.table()


def test_a_remote_grader_is_checked_through_any_callable():
    # Given a "remote" grader: a plain function over the batch, plus the spec it runs
    local = preset("numeric")
    calls = []

    def remote(batch: list) -> list:
        calls.append(len(batch))
        return json.loads(json.dumps(local(batch)))  # as if it came back over the wire

    report = verify_grader(remote, numeric_rows(), spec=local.spec, batch_size=10)
    assert report.passed, report.table()
    assert report.score_range == local.score_range
    assert max(calls) <= 10 and sum(calls) > 10


@pytest.mark.parametrize(
    "broken, problem",
    [
        (lambda batch: [], "results for"),
        (lambda batch: [{"id": i["id"], "aggregate_reward_score": math.nan} for i in batch], "not a finite number"),
        (lambda batch: [{"id": "x", "aggregate_reward_score": 1.0} for _ in batch], "does not echo"),
        (lambda batch: 1 / 0, "raised ZeroDivisionError"),
    ],
)
def test_a_broken_grader_fails_with_a_problem(broken, problem):
    report = verify_grader(broken, so_rows(), spec=preset("classification").spec)
    assert not report.passed
    assert any(problem in p for p in report.problems)
    assert "FAIL" in report.table()


def test_rows_without_messages_or_reference_are_skipped_and_counted():
    rows = [
        *so_rows()[:2],
        "junk",
        {"messages": [{"role": "user", "content": "q"}]},
        {"reference_answer": "HQ"},
        {"messages": [], "reference_answer": "BOGUS"},
    ]
    report = verify_grader(preset("classification"), rows, sample=None)
    assert report.skipped_rows == {"not_an_object": 1, "no_reference": 1, "no_messages": 1, "unrenderable_reference": 1}
    assert report.rows_sampled == 2


def test_no_usable_rows_fails():
    report = verify_grader(preset("classification"), [{"messages": [], "reference_answer": "nope"}])
    assert not report.passed
    assert report.problems


def test_sampling_is_deterministic_and_bounded():
    rows = [row for _ in range(20) for row in so_rows()]
    first = verify_grader(preset("classification"), iter(rows), sample=7, seed=3)
    second = verify_grader(preset("classification"), iter(rows), sample=7, seed=3)
    assert first.rows_sampled == 7
    assert first.as_dict() == second.as_dict()
    assert json.loads(json.dumps(first.as_dict()))["passed"] is True


@pytest.mark.parametrize(
    "spec, reference, expected",
    [
        ({"type": "label", "labels": ["HQ", "LQ_EDIT"]}, "lq_edit", "LQ_EDIT"),
        ({"type": "numeric"}, "65.3%", "ANSWER: 65.3%"),
        ({"type": "numeric"}, {"final_answer": "1,234"}, "ANSWER: 1234"),
        (
            {"type": "tool_call"},
            {"tool_calls": [{"name": "get_statute", "arguments": {"section": "187"}}]},
            '{"tool_calls": [{"name": "get_statute", "arguments": {"section": "187"}}]}',
        ),
        ({"type": "json_schema", "schema": {"type": "object"}}, {"a": 1}, '{"a": 1}'),
        ({"type": "text_similarity"}, {"answer": "Paris"}, "Paris"),
        (
            {
                "type": "weighted",
                "graders": {
                    "n": {"weight": 2, "grader": {"type": "numeric"}},
                    "t": {"weight": 1, "grader": {"type": "text_similarity"}},
                },
            },
            16,
            "ANSWER: 16",
        ),
        ({"type": "label", "labels": ["HQ"]}, "unknown", None),
    ],
)
def test_answer_text_renders_the_reference_as_the_model_would_answer(spec, reference, expected):
    assert answer_text(spec, reference) == expected


def test_the_numeric_preset_passes_on_rows_with_yes_no_references():
    # Given FinQA-style rows mixing numbers and yes/no references
    base = numeric_rows()
    rows = [
        *base,
        {**base[0], "id": "yes", "reference_answer": "yes"},
        {**base[1], "id": "no", "reference_answer": "No"},
    ]
    report = verify_grader(preset("numeric"), rows, sample=None)
    # Then every row is usable: the yes/no answer wins and its hacks (both answers at once, ...) lose
    assert report.passed, report.table()
    assert report.rows_sampled == len(rows)
    assert answer_text({"type": "numeric"}, "yes") == "ANSWER: yes"


def test_references_the_grader_cannot_read_are_shown_with_what_it_expects():
    renamed = {"HQ": "good", "LQ_EDIT": "needs-edit", "LQ_CLOSE": "closed"}
    rows = [{**row, "reference_answer": renamed[row["reference_answer"]]} for row in so_rows()]
    report = verify_grader(preset("classification"), rows)
    assert not report.passed
    (problem,) = report.problems
    assert problem.startswith("no usable rows") and f"cannot read {len(rows)} reference answer(s)" in problem
    assert '"good"' in problem and problem.endswith("it expects one of the grader's labels: HQ, LQ_EDIT, LQ_CLOSE")

    numbers = [{**row, "reference_answer": "about a dozen"} for row in numeric_rows()]
    (problem,) = verify_grader(preset("numeric"), numbers).problems
    assert '"about a dozen"' in problem and 'it expects a number (16, "65.3%"' in problem
