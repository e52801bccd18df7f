"""Weighted composition and the length/format guards any spec can carry."""

from __future__ import annotations

import json

import pytest

from lambdas.reward.engine import compile_spec
from lambdas.reward.spec import SpecError

from .support import grade_one, metrics_of, score

CALL = {"name": "get_statute", "arguments": {"code": "Penal Code", "section": "187"}}
WEIGHTED = {
    "type": "weighted",
    "graders": {
        "tool": {"weight": 0.7, "grader": {"type": "tool_call"}},
        "shape": {
            "weight": 0.3,
            "grader": {
                "type": "json_schema",
                "schema": {"type": "object", "required": ["tool_calls"], "additionalProperties": False},
            },
        },
    },
}


def test_weighted_sum_with_every_sub_score_in_the_metrics():
    # Given a response with the right call plus an extra top-level key the schema forbids
    response = json.dumps({"tool_calls": [CALL], "note": "x"})
    result = grade_one(compile_spec(WEIGHTED), response, {"tool_calls": [CALL]})
    found = metrics_of(result)
    # Then the score is 0.7 * 1 + 0.3 * 0.1, and each sub-grader's score and own metrics are listed
    assert result["aggregate_reward_score"] == pytest.approx(0.7 + 0.03)
    assert found["tool"] == 1.0 and found["shape"] == pytest.approx(0.1)
    assert found["tool.arg_values"] == 1.0 and found["shape.schema_valid"] == 0.0
    assert {m["type"] for m in result["metrics_list"] if m["name"] in ("tool", "shape")} == {"Reward"}


def test_weighted_score_range_is_the_weighted_sum_of_ranges():
    spec = {
        "type": "weighted",
        "graders": {
            "label": {"weight": 2, "grader": {"type": "label", "labels": ["A", "B"], "correct": 1, "incorrect": -1}},
            "sim": {"weight": 1, "grader": {"type": "text_similarity"}},
        },
    }
    assert compile_spec(spec).score_range == (-2.0, 3.0)


def test_a_bad_reference_for_one_sub_grader_makes_the_item_malformed():
    result = grade_one(compile_spec(WEIGHTED), json.dumps({"tool_calls": [CALL]}), "not a call")
    assert metrics_of(result) == {"malformed:bad_reference": 1.0}
    assert result["aggregate_reward_score"] == compile_spec(WEIGHTED).score_range[0]


def test_length_guard_penalises_long_answers_and_widens_the_range():
    reward = compile_spec(
        {"type": "label", "labels": ["HQ", "LQ"], "guards": [{"type": "length", "max_chars": 10, "penalty": 0.5}]}
    )
    assert reward.score_range == (-0.5, 1.0)
    short = grade_one(reward, "HQ", "HQ")
    long = grade_one(reward, "HQ because it is clear", "HQ")
    assert (short["aggregate_reward_score"], metrics_of(short)["length_penalty"]) == (1.0, 0.0)
    assert (long["aggregate_reward_score"], metrics_of(long)["length_penalty"]) == (0.5, -0.5)


def test_format_guard_requires_and_forbids_patterns():
    reward = compile_spec(
        {
            "type": "numeric",
            "guards": [
                {"type": "format", "require_regex": "^ANSWER:", "penalty": 0.3, "name": "needs_answer_line"},
                {"type": "format", "forbid_regex": "as an ai", "ignore_case": True, "penalty": 0.2},
            ],
        }
    )
    assert reward.score_range == (-0.5, 1.0)
    assert score(reward, "ANSWER: 4", 4) == 1.0
    result = grade_one(reward, "As an AI, I say 4", 4)
    assert result["aggregate_reward_score"] == pytest.approx(0.5)
    assert metrics_of(result)["needs_answer_line"] == -0.3
    assert metrics_of(result)["format_penalty"] == -0.2


def test_length_and_format_guards_combine_in_one_spec():
    # Given a length guard followed by a format guard on the same grader
    reward = compile_spec(
        {
            "type": "label",
            "labels": ["HQ", "LQ"],
            "guards": [
                {"type": "length", "max_chars": 5, "penalty": 0.25},
                {"type": "format", "require_regex": "^[A-Z]+$", "penalty": 0.5},
            ],
        }
    )
    # Then both penalties widen the range and each is reported under its own name
    assert reward.score_range == (-0.75, 1.0)
    result = grade_one(reward, "HQ, clearly", "HQ")
    assert result["aggregate_reward_score"] == pytest.approx(0.25)
    assert metrics_of(result)["length_penalty"] == -0.25
    assert metrics_of(result)["format_penalty"] == -0.5
    assert grade_one(reward, "HQ", "HQ")["aggregate_reward_score"] == 1.0


def test_guards_apply_inside_weighted_sub_graders():
    spec = {
        "type": "weighted",
        "graders": {
            "label": {
                "weight": 1,
                "grader": {
                    "type": "label",
                    "labels": ["A", "B"],
                    "guards": [{"type": "length", "max_chars": 3, "penalty": 1}],
                },
            }
        },
    }
    result = grade_one(compile_spec(spec), "A is right", "A")
    assert result["aggregate_reward_score"] == 0.0
    assert metrics_of(result)["label.length_penalty"] == -1.0


@pytest.mark.parametrize(
    "guards, path",
    [
        ({"type": "length"}, "guards"),
        ([{"type": "length", "penalty": 1}], "guards[0].max_chars"),
        ([{"type": "length", "max_chars": 0, "penalty": 1}], "guards[0].max_chars"),
        ([{"type": "format", "penalty": 1}], "guards[0]"),
        ([{"type": "format", "require_regex": "(", "penalty": 1}], "guards[0].require_regex"),
        ([{"type": "format", "require_regex": "x", "penalty": -1}], "guards[0].penalty"),
        ([{"type": "size", "penalty": 1}], "guards[0].type"),
        (
            [{"type": "length", "max_chars": 5, "penalty": 1}, {"type": "length", "max_chars": 9, "penalty": 1}],
            "guards[1].name",
        ),
    ],
)
def test_bad_guards_name_the_field(guards, path):
    with pytest.raises(SpecError) as raised:
        compile_spec({"type": "text_similarity", "guards": guards})
    assert raised.value.path == path
